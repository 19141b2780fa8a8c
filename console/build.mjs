// Builds the console into shared/harvest/console/static/: one ES module bundle (our sources and
// hls.js from node_modules, pinned by package-lock.json), the page, the stylesheet and the licence
// of what is bundled. Same inputs, same bytes: no timestamps, no absolute paths, no source maps.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || join(here, "..", "shared", "harvest", "console", "static");

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "licenses"), { recursive: true });

await build({
  absWorkingDir: here,
  entryPoints: ["src/main.js"],
  outfile: join(out, "console.js"),
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  legalComments: "none", // the licences are shipped whole, below
  charset: "utf8",
  logLevel: "warning",
});
copyFileSync(join(here, "src", "index.html"), join(out, "index.html"));
copyFileSync(join(here, "src", "console.css"), join(out, "console.css"));

const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
const bundled = Object.keys(lock.packages[""].dependencies || {}).sort();
const lines = [];
for (const name of bundled) {
  const version = lock.packages[`node_modules/${name}`].version;
  copyFileSync(join(here, "node_modules", name, "LICENSE"), join(out, "licenses", `${name}.txt`));
  lines.push(`${name} ${version}`);
}
writeFileSync(join(out, "licenses", "BUNDLED.txt"), `${lines.join("\n")}\n`);
console.log(`console built into ${out}: ${bundled.join(", ") || "no"} bundled`);
