// The page's redraw of one overlay (the CAM or the Grad-CAM tab's), defined once per page as
// `window.camRedraw` (explorer/maps.py fills the __NAMES__; each event calls it with its method). It runs
// on a change of class, opacity or colour map, and when an explanation arrives drawn with settings the
// controls have since left. Same formula as explorer.maps.paint / cam.render.overlay:
//   m = the class's map after ReLU, min-max scaled to [0, 1], bilinearly resized to the photo
//       (OpenCV's INTER_LINEAR: pixel centres aligned, edges clamped),
//   a = opacity * m ** GAMMA,   out = round(a * colormap(m) + (1 - a) * photo greyed by DESATURATE).
// The maps come from explorer.maps.overlay_maps (16-bit values in a PNG's R and G). The result is an
// uncompressed BMP: encoding a JPEG in the page took longer than all the arithmetic. A map with no
// positive evidence is left to the server (its muted photo and note); so is anything unexpected.
async (method, target, opacity, colormap, slider, maps, meta) => {
  try {
    const S = (window.__camRedraw ??= {cache: new Map(), urls: {}, drawn: {}});
    S.luts ??= Object.fromEntries(Object.entries(__LUTS__).map(
      ([k, hex]) => [k, Uint8Array.from(hex.match(/../g), b => parseInt(b, 16))]));
    const lut = S.luts[colormap];
    const c = target === "predicted" ? meta?.predicted : meta?.classes.indexOf(target);
    const block = meta?.methods.indexOf(method);
    if (!meta || !maps?.url || !slider?.[0]?.url || !lut || !(c >= 0) || !(block >= 0)) return [slider];
    if (!meta.positive[method][c] || !(opacity >= 0 && opacity <= 1)) return [slider];
    const shown = document.getElementById(`${method}-slider`)?.offsetParent;
    if (!shown) await new Promise(r => setTimeout(r, 100));  // a hidden tab's overlay: once the shown one is
    const ticket = (S.drawn[method] = (S.drawn[method] || 0) + 1);  // a later call supersedes this one

    // Kept for the last few inputs: the photo greyed (RGB), the maps as floats, each class's resized map.
    const cached = (key, make) => {
      if (!S.cache.has(key)) {
        S.cache.set(key, make());
        while (S.cache.size > 16) S.cache.delete(S.cache.keys().next().value);
      }
      return S.cache.get(key);
    };
    const pixels = async url => {
      const blob = await (await fetch(url)).blob();
      const bitmap = await createImageBitmap(blob, {colorSpaceConversion: "none", premultiplyAlpha: "none"});
      const g = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d", {willReadFrequently: true});
      g.drawImage(bitmap, 0, 0);
      return g.getImageData(0, 0, bitmap.width, bitmap.height);
    };
    const photo = await cached("photo " + slider[0].url, async () => {
      const img = await pixels(slider[0].url), p = img.data, rgb = new Uint8Array(img.width * img.height * 3);
      for (let i = 0, j = 0; i < p.length; i += 4, j += 3) {  // OpenCV's RGB2GRAY (14-bit fixed point), mixed in
        const grey = (p[i] * 4899 + p[i + 1] * 9617 + p[i + 2] * 1868 + 8192) >> 14;
        for (let k = 0; k < 3; k++) rgb[j + k] = Math.round((1 - __DESATURATE__) * p[i + k] + __DESATURATE__ * grey);
      }
      return {rgb, width: img.width, height: img.height};
    });
    const all = await cached("maps " + maps.url, async () => {
      const p = (await pixels(maps.url)).data, v = new Float32Array(p.length / 4);
      for (let i = 0; i < v.length; i++) v[i] = (p[4 * i] * 256 + p[4 * i + 1]) / 65535;
      return v;
    });
    const W = photo.width, H = photo.height, [mw, mh] = meta.map_size;
    // This class's map at the photo's size: its colour-table row (k) and opacity weight (m ** GAMMA).
    const planOf = c => cached(`plan ${maps.url} ${method} ${c} ${W}x${H}`, async () => {
      const axis = (dst, src) => {  // INTER_LINEAR: source index and weight of every destination pixel
        const i0 = new Int32Array(dst), i1 = new Int32Array(dst), f = new Float32Array(dst), scale = src / dst;
        for (let d = 0; d < dst; d++) {
          const x = (d + 0.5) * scale - 0.5;
          let s = Math.floor(x), t = x - s;
          if (s < 0) { s = 0; t = 0; }
          if (s >= src - 1) { s = src - 1; t = 0; }
          i0[d] = s; i1[d] = Math.min(s + 1, src - 1); f[d] = t;
        }
        return {i0, i1, f};
      };
      const xs = axis(W, mw), ys = axis(H, mh), base = (block * meta.classes.length + c) * mw * mh;
      const rows = new Float32Array(mh * W);  // separable: first along x, for every source row
      for (let y = 0; y < mh; y++) {
        for (let x = 0; x < W; x++) {
          const a = all[base + y * mw + xs.i0[x]], b = all[base + y * mw + xs.i1[x]];
          rows[y * W + x] = a + xs.f[x] * (b - a);
        }
      }
      const k = new Uint16Array(W * H), w = new Float32Array(W * H);
      S.gamma ??= Float32Array.from({length: 65537}, (_, i) => Math.pow(i / 65536, __GAMMA__));
      for (let y = 0; y < H; y++) {
        const r0 = ys.i0[y] * W, r1 = ys.i1[y] * W, fy = ys.f[y];
        for (let x = 0, j = y * W; x < W; x++, j++) {
          const m = Math.min(1, Math.max(0, rows[r0 + x] + fy * (rows[r1 + x] - rows[r0 + x])));
          k[j] = 3 * Math.floor(m * 255 + 0.5);
          // a table for m >= 1/1024 (error < 1e-3 of the opacity), exact below
          w[j] = m >= 1 / 1024 ? S.gamma[Math.round(m * 65536)] : m > 0 ? Math.pow(m, __GAMMA__) : 0;
        }
      }
      return {k, w};
    });
    const plan = await planOf(c);
    if (ticket !== S.drawn[method]) return [slider];
    if (shown && window.requestIdleCallback) {  // the other classes' plans while the reader looks
      const rest = meta.classes.map((_, i) => i).filter(i => i !== c && meta.positive[method][i]);
      const next = () => rest.length && planOf(rest.shift()).then(() => requestIdleCallback(next, {timeout: 2000}));
      requestIdleCallback(next, {timeout: 2000});
    }

    const stride = (3 * W + 3) & ~3, bmp = new Uint8Array(54 + stride * H), view = new DataView(bmp.buffer);
    bmp[0] = 0x42; bmp[1] = 0x4d;  // "BM", then BITMAPINFOHEADER: 24 bits, uncompressed, bottom-up rows
    [[2, bmp.length], [10, 54], [14, 40], [18, W], [22, H], [34, stride * H]].forEach(([o, v]) => view.setUint32(o, v, true));
    view.setUint16(26, 1, true); view.setUint16(28, 24, true);
    const {k, w} = plan, rgb = photo.rgb;
    for (let y = 0; y < H; y++) {
      let o = 54 + (H - 1 - y) * stride;
      for (let x = 0, j = y * W; x < W; x++, j++, o += 3) {
        const a = opacity * w[j], b = 1 - a, q = 3 * j, t = k[j];
        bmp[o] = a * lut[t + 2] + b * rgb[q + 2] + 0.5;  // BGR; a Uint8Array truncates: round half up
        bmp[o + 1] = a * lut[t + 1] + b * rgb[q + 1] + 0.5;
        bmp[o + 2] = a * lut[t] + b * rgb[q] + 0.5;
      }
    }
    const url = URL.createObjectURL(new Blob([bmp], {type: "image/bmp"}));
    const old = S.urls[method];
    S.urls[method] = url;
    if (old) setTimeout(() => URL.revokeObjectURL(old), 10000);  // still shown until the new one decodes
    const name = `${method}_overlay_${meta.classes[c]}.bmp`;
    return [[slider[0], {...slider[1], url, path: name, orig_name: name, size: bmp.length, mime_type: "image/bmp"}]];  // one output: a list of one
  } catch (error) {
    console.warn("The overlay could not be redrawn in the page; the server's picture follows.", error);
    return [slider];
  }
}
