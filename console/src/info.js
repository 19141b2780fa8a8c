// Info: every HarvestJobResp field, live progress, the manifest URL(s) and a player.
import { formatBytes, formatDate, h, replaceChildren } from "./dom.js";
import { RUNNING_REASON, channelLink, deleteJobs, jobTime, statusBadge } from "./jobs.js";
import { createPlayer } from "./player.js";
import { parseDestination } from "./rules.js";

const FIELDS = [
  "ID",
  "ChannelName",
  "EndpointName",
  "TimeFormat",
  "StartTime",
  "EndTime",
  "Destination",
  "Manifest",
  "Status",
  "ErrMessage",
  "CreateTime",
  "ChannelId",
  "Region",
  "CallbackURL",
];
const REFRESH_MS = 1000;

// Where the VOD's parent manifest is: in COS, and (serve's local bucket) on this server.
export function manifestUrls(job, config) {
  const urls = [];
  const cos = `${job.Destination}${job.Manifest}`;
  if (/^https:\/\//.test(cos)) urls.push({ label: "COS", url: cos }); // never a javascript: link
  const parsed = job.Destination ? parseDestination(job.Destination) : { error: "none" };
  if (config.bucket && !parsed.error) {
    const key = `${parsed.prefix}${job.Manifest}`.split("/").map(encodeURIComponent).join("/");
    urls.push({ label: "This server's bucket", url: new URL(`${config.bucket}${parsed.bucket}/${key}`, location.href).href });
  }
  return urls;
}

function fieldValue(job, name) {
  const value = job[name];
  if (name === "ChannelName") return channelLink(value);
  if (name === "Status") return statusBadge(value);
  if (name === "CreateTime") return `${value} (${formatDate(value)})`;
  if (name === "StartTime" || name === "EndTime") {
    const seconds = jobTime(job, name);
    return Number.isFinite(seconds) ? `${value} (${formatDate(seconds)})` : value;
  }
  if (value === "" || value === undefined || value === null) return h("span", { className: "none" }, "—");
  return String(value);
}

export async function renderInfo(ctx, id) {
  document.title = `${id} · Harvest Jobs`;
  let { Info: job } = await ctx.api.call("DescribeStreamPackageHarvestJob", { ID: id });
  if (!ctx.alive()) return;
  const alert = h("p", { className: "form-error", role: "alert" });
  const heading = h("h1", {}, `Harvest job ${job.ID}`);
  const badge = h("span", {});
  const record = h("dl", { className: "facts record", "aria-label": "Job record" });
  const progressBar = h("progress", { max: 1, value: 0, "aria-label": "Segments harvested" });
  const progressFacts = h("dl", { className: "facts" });
  const errorBox = h("div", {});
  const manifests = h("ul", { className: "urls" });
  const playerBox = h("div", {});
  const remove = h("button", { type: "button", className: "danger" }, "Delete");
  const reason = h("span", { className: "reason", id: "delete-reason" });
  let player = null;
  let timer = null;

  remove.addEventListener("click", async () => {
    if (await deleteJobs(ctx.api, [job.ID], alert)) ctx.go("#/jobs");
  });

  function showJob() {
    replaceChildren(badge, statusBadge(job.Status));
    replaceChildren(record, FIELDS.flatMap((name) => [h("dt", {}, name), h("dd", { "data-field": name }, fieldValue(job, name))]));
    const running = job.Status === "Running";
    remove.disabled = running;
    reason.textContent = running ? RUNNING_REASON : "";
    if (running) remove.setAttribute("aria-describedby", reason.id);
    else remove.removeAttribute("aria-describedby");
    const urls = manifestUrls(job, ctx.config);
    replaceChildren(
      manifests,
      urls.map(({ label, url }) => h("li", {}, `${label}: `, h("a", { href: url, className: "url" }, url))),
    );
    replaceChildren(errorBox, job.ErrMessage ? h("p", { className: "form-error", role: "alert" }, job.ErrMessage) : null);
    if (job.Status === "Completed" && !player && urls.length) {
      // The local bucket is reachable from this page for sure; COS only with CORS.
      player = createPlayer(urls[urls.length - 1].url);
      replaceChildren(playerBox, player.element);
    } else if (job.Status === "Running") {
      replaceChildren(playerBox, h("p", { className: "hint" }, "The player appears here once the job has completed."));
    } else if (job.Status === "Failed") {
      replaceChildren(playerBox, h("p", { className: "hint" }, "A failed job has no VOD to play."));
    }
  }

  function showProgress(progress) {
    const total = progress.SegmentsTotal;
    progressBar.max = Math.max(1, total);
    progressBar.value = job.Status === "Completed" ? progressBar.max : progress.SegmentsDone;
    replaceChildren(
      progressFacts,
      h("dt", {}, "Phase"),
      h("dd", { "data-field": "Phase" }, progress.Phase),
      h("dt", {}, "Segments"),
      h("dd", { "data-field": "Segments" }, total ? `${progress.SegmentsDone} / ${total}` : "not planned yet"),
      h("dt", {}, "Chunks"),
      h("dd", {}, progress.ChunksTotal ? `${progress.ChunksDone} / ${progress.ChunksTotal}` : "—"),
      h("dt", {}, "Bytes"),
      h("dd", { "data-field": "Bytes" }, formatBytes(progress.BytesDone)),
    );
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const [described, progress] = await Promise.all([
        ctx.api.call("DescribeStreamPackageHarvestJob", { ID: id }),
        ctx.api.call("DescribeStreamPackageHarvestJobProgress", { ID: id }),
      ]);
      if (!ctx.alive()) return;
      job = described.Info;
      showJob();
      showProgress(progress);
      alert.textContent = "";
    } catch (error) {
      if (!ctx.alive()) return;
      alert.textContent = `${error.code}: ${error.message}`;
    }
    if (job.Status === "Running") timer = setTimeout(refresh, REFRESH_MS);
  }

  ctx.onLeave(() => {
    clearTimeout(timer);
    if (player) player.destroy();
  });
  showJob();
  replaceChildren(
    ctx.main,
    h("p", { className: "crumbs" }, h("a", { href: "#/jobs" }, "Harvest Jobs"), " / ", job.ID),
    h("div", { className: "page-head" }, heading, badge, h("div", { className: "toolbar-actions" }, remove)),
    reason,
    alert,
    h(
      "div",
      { className: "info-grid" },
      h("section", { className: "card", "aria-labelledby": "progress-title" }, h("h2", { id: "progress-title" }, "Progress"), progressBar, progressFacts, errorBox),
      h("section", { className: "card", "aria-labelledby": "player-title" }, h("h2", { id: "player-title" }, "Player"), playerBox),
      h("section", { className: "card", "aria-labelledby": "record-title" }, h("h2", { id: "record-title" }, "Record"), record),
      h("section", { className: "card", "aria-labelledby": "manifest-title" }, h("h2", { id: "manifest-title" }, "Manifest URLs"), manifests),
    ),
  );
  await refresh();
}
