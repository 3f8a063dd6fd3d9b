// Opens the built page (target/web) in headless Chromium and checks it as a
// user and a script would: the first picture, the seed scene run to its end
// with ?run_until, the state against a native run's last sample and the
// reference solution, an edited scene opened in the file picker and shared
// by its link, a bad scene file dropped on the page, a screenshot (F12) and
// a recording (F9)
// downloaded, a click's perturbation, the GPU engine, a bad query's
// error, and the WebGL2 build where a browser has no WebGPU.
// Prints the timings; exits 1 on a failed check.
// Usage: node check.mjs URL WORK OUT_DIR   (scripts/web-check runs it, with
// WEB_TOOLS naming the folder whose node_modules has playwright-core; WORK
// holds native/ (a native run of seed_notebook), native_gpu_f32/ (a native
// f32 GPU run of it), edited.ron (the seed scene with another coupling),
// edited/ (its native run) and reference/ (the reference solution))
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { inflateSync } from "node:zlib";
import { join, resolve } from "node:path";

const require = createRequire(resolve(process.env.WEB_TOOLS ?? ".", "package.json"));
const { chromium } = require("playwright-core");

const [url, work, outDir] = process.argv.slice(2);
const nativeRun = join(work, "native");
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
};

/** A float .npy array: its shape and its values. */
function readNpy(path) {
  const bytes = readFileSync(path);
  const headerLen = bytes.readUInt16LE(8);
  const header = bytes.toString("latin1", 10, 10 + headerLen);
  const type = header.includes("'<f8'") ? Float64Array : header.includes("'<f4'") ? Float32Array : null;
  if (!type) throw new Error(`${path}: neither float64 nor float32 (${header})`);
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(",").filter((d) => d.trim()).map(Number);
  return { shape, data: new type(bytes.buffer.slice(bytes.byteOffset + 10 + headerLen)) };
}

/** Row `row` (the last by default) of a float .npy array [samples, cells]. */
function npyRow(path, row) {
  const { shape: [samples, cells], data } = readNpy(path);
  const k = row ?? samples - 1;
  return data.slice(k * cells, (k + 1) * cells);
}

/** The row of a run (a folder with t.npy) sampled at model time `t`. */
function rowAt(run, t) {
  const times = readNpy(join(run, "t.npy")).data;
  let best = 0;
  times.forEach((u, k) => { if (Math.abs(u - t) < Math.abs(times[best] - t)) best = k; });
  if (Math.abs(times[best] - t) > 1e-9) throw new Error(`${run}: no sample at t = ${t}`);
  return best;
}

/** The largest difference between a page's state and a native sample. */
function gapTo(state, run, row) {
  const e = npyRow(join(run, "E.npy"), row);
  const i = npyRow(join(run, "I.npy"), row);
  let gap = 0;
  for (let k = 0; k < e.length; k++) {
    gap = Math.max(gap, Math.abs(e[k] - state.E[k]), Math.abs(i[k] - state.I[k]));
  }
  return e.length === state.E.length ? gap : Infinity;
}
const pageState = (on = page) => on.evaluate(() => {
  const s = window.eifield.state();
  return { t: s.t, E: Array.from(s.E), I: Array.from(s.I) };
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--enable-unsafe-webgpu",
    // Headless WebGPU presents through Vulkan on SwiftShader (without these
    // the device is lost within a second).
    "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-angle=vulkan",
  ],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 720 }, acceptDownloads: true });
const logs = [];
page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));

const status = (on = page) => on.evaluate(() => window.eifield?.status?.() ?? null).catch(() => null);
/** RGBA pixels of a PNG screenshot (8 bits, RGB or RGBA, not interlaced). */
function decodePng(png) {
  let at = 8, width = 0, height = 0, channels = 4;
  const idat = [];
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString("latin1", at + 4, at + 8);
    const body = png.subarray(at + 8, at + 8 + length);
    if (type === "IHDR") {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      if (body[8] !== 8 || body[12] !== 0) throw new Error("unexpected PNG layout");
      channels = { 2: 3, 6: 4 }[body[9]];
    } else if (type === "IDAT") idat.push(body);
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(width * height * 4);
  const prev = new Uint8Array(stride), row = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const left = x >= channels ? row[x - channels] : 0;
      const up = prev[x], upLeft = x >= channels ? prev[x - channels] : 0;
      const p = left + up - upLeft;
      const paeth = Math.abs(p - left) <= Math.abs(p - up) && Math.abs(p - left) <= Math.abs(p - upLeft)
        ? left : Math.abs(p - up) <= Math.abs(p - upLeft) ? up : upLeft;
      const predictor = [0, left, up, (left + up) >> 1, paeth][filter];
      row[x] = (line[x] + predictor) & 255;
    }
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) out[4 * (y * width + x) + c] = row[x * channels + c];
      out[4 * (y * width + x) + 3] = 255;
    }
    prev.set(row);
  }
  return { width, height, data: out };
}

/**
 * The fraction of the page's pixels, as a screenshot shows them, in colours
 * of the lattice's colour map away from the clear colour and the panel's
 * greys: zero until the surface is drawn.
 */
async function drawn(on = page) {
  const { data } = decodePng(await on.screenshot());
  let coloured = 0;
  for (let k = 0; k < data.length; k += 4) {
    const [r, g, b] = [data[k], data[k + 1], data[k + 2]];
    if (Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured++;
  }
  return coloured / (data.length / 4);
}

async function waitFor(predicate, seconds, on = page) {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    const s = await status(on);
    if (s && predicate(s)) return s;
    if (Date.now() > until) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
}

try {
  // The first picture of the seed scene.
  let opened = Date.now();
  await page.goto(`${url}/?scene=seed_notebook`);
  const first = await waitFor((s) => s.rows > 0 || s.error, 60);
  check(first && !first.error && first.rows === 7 && first.cols === 7,
    `the seed scene opens: ${JSON.stringify(first)}`);
  let painted = 0;
  while (painted < 0.02 && Date.now() - opened < 60000) painted = await drawn();
  const firstPicture = (Date.now() - opened) / 1000;
  check(painted >= 0.02, `the first picture after ${firstPicture.toFixed(2)} s (${(100 * painted).toFixed(1)} % of the page in the colour map's colours)`);

  // The seed scene to its end, as fast as the page goes.
  opened = Date.now();
  await page.goto(`${url}/?scene=seed_notebook&run_until=20`);
  const started = await waitFor((s) => s.tick > 0 || s.error, 60);
  const startedAt = Date.now();
  const done = await waitFor((s) => s.paused && s.t >= 20 - 1e-9, 120);
  const ran = (Date.now() - opened) / 1000;
  check(started?.tick > 0 && done && done.paused && Math.abs(done.t - 20) < 1e-9,
    `?run_until=20 pauses at t = 20, ${ran.toFixed(2)} s after the page was opened (the first tick after ${((startedAt - opened) / 1000).toFixed(2)} s): t = ${done?.t}, tick ${done?.tick}`);
  check(done?.backend === "cpu" && done?.precision === "f64" && done?.renderer === "webgpu",
    `backend ${done?.backend}, precision ${done?.precision}, renderer ${done?.renderer}, adapter "${done?.adapter}"`);
  const state = await pageState();
  const gap = gapTo(state, nativeRun);
  // The page's portable kernel rounds each multiply and add; the native
  // engine here fuses them (FMA): the same scheme, a few ulp apart per step.
  check(state.E.length === 49 && gap <= 1e-9,
    `state() at t = ${state.t} against the native run's last sample: largest difference ${gap.toExponential(2)}`);
  const reference = join(work, "reference");
  const referenceGap = gapTo(state, reference, rowAt(reference, 20));
  check(referenceGap <= 1e-4,
    `state() at t = 20 against the reference solution: largest difference ${referenceGap.toExponential(2)}`);
  await page.screenshot({ path: join(outDir, "seed_notebook.png") });

  // An edited scene chosen in the file picker, shared by its link: the
  // link opens that scene.
  const seedLink = await page.evaluate(() => window.eifield.share_link());
  await page.setInputFiles("#eifield-file", join(work, "edited.ron"));
  const loaded = await waitFor((s) => s.tick === 0 && s.t === 0, 30);
  let link = seedLink;
  for (let k = 0; k < 100 && link === seedLink; k++) {
    await new Promise((r) => setTimeout(r, 50));
    link = await page.evaluate(() => window.eifield.share_link());
  }
  check(loaded?.tick === 0 && typeof link === "string" && link.includes("#scene="),
    `a scene file opens, and its link is ${link?.length} characters long`);
  await page.goto(link.replace("run_until=20", "run_until=5"));
  const shared = await waitFor((s) => (s.paused && s.t >= 5 - 1e-9) || s.error, 60);
  const sharedState = await pageState();
  // The native runs sample 100 times per unit: t = 5 is sample 500.
  const sharedGap = gapTo(sharedState, join(work, "edited"), 500);
  const seedGap = gapTo(sharedState, nativeRun, 500);
  check(shared?.paused && sharedGap <= 1e-9 && seedGap > 1e-3,
    `the shared link runs the edited scene: at t = 5 it is ${sharedGap.toExponential(2)} from the edited scene's native run, ${seedGap.toExponential(2)} from the seed scene's`);

  // A bad scene file dropped on the page: its error, naming the field; the
  // current one runs on.
  await page.evaluate(() => {
    const files = new DataTransfer();
    files.items.add(new File(["(grid: (rows: 0, cols: 7))"], "bad.ron", { type: "text/plain" }));
    document.dispatchEvent(new DragEvent("drop", { dataTransfer: files, bubbles: true, cancelable: true }));
  });
  const refused = await waitFor((s) => s.command_error, 30);
  check(refused?.command_error?.includes("rows") && refused.rows === 7,
    `a bad scene file is refused and the scene stays: ${refused?.command_error}`);

  // A screenshot (F12) and a recording of the canvas (F9) are downloads.
  await page.click("#eifield-canvas", { position: { x: 900, y: 100 } });
  let download = page.waitForEvent("download", { timeout: 20000 });
  await page.keyboard.press("F12");
  let file = await download.catch(() => null);
  const png = file ? readFileSync(await file.path()) : Buffer.alloc(0);
  check(png.length > 1000 && png.toString("latin1", 1, 4) === "PNG",
    `F12 downloads a screenshot: ${file?.suggestedFilename()} (${png.length} bytes)`);
  await page.keyboard.press("F9");
  await new Promise((r) => setTimeout(r, 2000));
  download = page.waitForEvent("download", { timeout: 20000 });
  await page.keyboard.press("F9");
  file = await download.catch(() => null);
  const webm = file ? readFileSync(await file.path()) : Buffer.alloc(0);
  check(webm.length > 1000 && webm.readUInt32BE(0) === 0x1a45dfa3,
    `F9, F9 downloads a recording of the canvas: ${file?.suggestedFilename()} (${webm.length} bytes)`);

  // A click on the lattice perturbs the cell under the pointer. In the
  // induction scene activity stays near the pulsed centre cell: a cell away
  // from it and its mirror image through the centre relax alike from the
  // initial state (their drives differ by the 1 % heterogeneity), until a
  // click sets the clicked one apart.
  await page.goto(`${url}/?scene=induction`);
  const calm = await waitFor((s) => s.tick > 30 || s.error, 60);
  const centre = [Math.floor(calm.rows / 2), Math.floor(calm.cols / 2)];
  const mirrorOf = (row, col) => (calm.rows - 1 - row) * calm.cols + (calm.cols - 1 - col);
  let clicked = null;
  for (const [x, y] of [[1000, 300], [1060, 360], [900, 250], [1100, 420], [800, 200]]) {
    // Held for longer than a frame: software rendering draws a few frames
    // per second, and a press and release within one frame is no click.
    await page.mouse.move(x, y);
    await new Promise((r) => setTimeout(r, 400));
    const pressed = await pageState();
    await page.mouse.down();
    await new Promise((r) => setTimeout(r, 600));
    await page.mouse.up();
    const s = await waitFor((s) => s.perturbations > calm.perturbations, 3);
    if (s?.perturbations > calm.perturbations && s.last_perturbation) {
      const { row, col } = s.last_perturbation;
      if (Math.max(Math.abs(row - centre[0]), Math.abs(col - centre[1])) >= 5) {
        clicked = { x, y, row, col, count: s.perturbations, pressed };
        break;
      }
    }
  }
  // E of the clicked cell less its mirror's: when the button went down,
  // and its largest change over the next two seconds.
  let gapBefore = NaN, gapRise = NaN;
  if (clicked) {
    const k = clicked.row * calm.cols + clicked.col;
    const m = mirrorOf(clicked.row, clicked.col);
    gapBefore = clicked.pressed.E[k] - clicked.pressed.E[m];
    gapRise = -Infinity;
    for (const until = Date.now() + 2000; Date.now() < until;) {
      const now = await pageState();
      gapRise = Math.max(gapRise, now.E[k] - now.E[m] - gapBefore);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  check(clicked && Math.abs(gapBefore) < 0.05 && gapRise > 0.1,
    `a click at (${clicked?.x}, ${clicked?.y}) perturbs cell (${clicked?.row}, ${clicked?.col}): perturbations ${calm.perturbations} → ${clicked?.count}, E there less E at its mirror image ${gapBefore.toFixed(3)} when pressed, then up to ${gapRise.toFixed(3)} more`);

  // The GPU engine (f32, WebGPU compute), to the end of the seed scene.
  await page.goto(`${url}/?scene=seed_notebook&backend=gpu&run_until=20`);
  const gpu = await waitFor((s) => (s.paused && s.t >= 20 - 1e-9) || s.error, 120);
  let gpuState = await pageState();
  for (let k = 0; k < 100 && gpuState.t < 20 - 1e-9; k++) {
    await new Promise((r) => setTimeout(r, 50));
    gpuState = await pageState();
  }
  const gpuGap = gapTo(gpuState, nativeRun);
  const gpuF32Gap = gapTo(gpuState, join(work, "native_gpu_f32"));
  // f32 against f64: 7.4e-4 for the reference case (see the README).
  check(gpu?.backend === "gpu" && gpu?.precision === "f32" && gpuState.t === 20 && gpuGap < 2e-3,
    `?backend=gpu runs the GPU engine (${gpu?.precision}, ${gpu?.adapter}): at t = ${gpuState.t}, ${gpuGap.toExponential(2)} from the native f64 run, ${gpuF32Gap.toExponential(2)} from a native f32 GPU run`);

  // WebGPU has no f64: asking for the GPU engine in f64 says so.
  await page.goto(`${url}/?backend=gpu&precision=f64`);
  const noF64 = await waitFor((s) => s.error, 30);
  check(noF64?.error?.includes("WebGPU has no f64"), `?backend=gpu&precision=f64: ${noF64?.error}`);

  // The default scene, drawn.
  await page.goto(`${url}/`);
  const waves = await waitFor((s) => s.rows > 0 && s.tick > 50, 60);
  check(waves?.rows === 64, `the default scene runs: ${JSON.stringify(waves)}`);
  const wavesDrawn = await drawn();
  check(wavesDrawn > 0.1, `the default scene is drawn (${(100 * wavesDrawn).toFixed(1)} % of the page in the colour map's colours)`);
  await page.screenshot({ path: join(outDir, "waves.png") });

  // A bad query says what is wrong, on the page and in status().
  await page.goto(`${url}/?scene=nope`);
  const bad = await waitFor((s) => s.error, 30);
  const text = await page.textContent("#eifield-message");
  check(bad?.error?.includes("?scene=nope") && text.includes("?scene=nope"),
    `?scene=nope: ${bad?.error}`);

  // A browser without WebGPU (this one, without its WebGPU flags; its
  // WebGL2 runs through ANGLE on SwiftShader): the page falls back to its
  // WebGL2 build, the CPU engine, the surface drawn from textures.
  const glBrowser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic", "--use-angle=swiftshader",
    ],
  });
  try {
    const glPage = await glBrowser.newPage({ viewport: { width: 1280, height: 720 } });
    glPage.on("console", (m) => logs.push(`webgl2 ${m.type()}: ${m.text()}`));
    glPage.on("pageerror", (e) => logs.push(`webgl2 pageerror: ${e.message}`));
    const glOpened = Date.now();
    await glPage.goto(`${url}/?scene=seed_notebook&run_until=20`);
    const gl = await waitFor((s) => (s.paused && s.t >= 20 - 1e-9) || s.error, 120, glPage);
    const glRan = (Date.now() - glOpened) / 1000;
    const glState = await pageState(glPage);
    const glGap = gapTo(glState, nativeRun);
    check(gl?.renderer === "webgl2" && gl.backend === "cpu" && glGap <= 1e-9,
      `without WebGPU the page runs its WebGL2 build (${gl?.adapter}): the seed scene to t = ${gl?.t} in ${glRan.toFixed(2)} s, ${glGap.toExponential(2)} from the native run`);
    const glDrawn = await drawn(glPage);
    check(glDrawn > 0.02, `WebGL2 draws the seed scene (${(100 * glDrawn).toFixed(1)} % of the page in the colour map's colours)`);
    await glPage.screenshot({ path: join(outDir, "seed_notebook_webgl2.png") });
    await glPage.goto(`${url}/?backend=gpu`);
    const glGpu = await waitFor((s) => s.error, 30, glPage);
    check(glGpu?.error?.includes("needs WebGPU"), `?backend=gpu without WebGPU: ${glGpu?.error}`);
    await glPage.goto(`${url}/`);
    const glWaves = await waitFor((s) => (s.rows > 0 && s.tick > 50) || s.error, 60, glPage);
    const glWavesDrawn = await drawn(glPage);
    check(glWaves?.rows === 64 && glWavesDrawn > 0.1,
      `WebGL2 runs and draws the default scene (${(100 * glWavesDrawn).toFixed(1)} % of the page in the colour map's colours, ${glWaves?.fps?.toFixed(1)} fps)`);
    await glPage.screenshot({ path: join(outDir, "waves_webgl2.png") });
    // And the WebGPU browser runs the WebGL2 build when asked to.
    await page.goto(`${url}/?renderer=webgl2`);
    const asked = await waitFor((s) => s.error || s.renderer, 30);
    const text = await page.textContent("#eifield-message");
    check(asked?.renderer === "webgl2" || text.includes("?renderer=webgl2"),
      `?renderer=webgl2 in the WebGPU browser: ${asked?.renderer ?? text}`);
  } finally {
    await glBrowser.close();
  }

  writeFileSync(join(outDir, "timings.json"), JSON.stringify({ firstPicture, ran, gap }, null, 1));
} finally {
  await browser.close();
  if (failures.length) {
    console.log("console of the page:\n" + logs.slice(-40).join("\n"));
  }
}
process.exit(failures.length ? 1 : 0);
