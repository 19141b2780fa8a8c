// The Harvest Jobs list, the Channels list and a channel's details page (which holds the same list).
import { formatDate, h, replaceChildren, timeZoneLabel, uid } from "./dom.js";
import { describeWindow, parseTime } from "./rules.js";

export const STATUSES = ["Running", "Completed", "Failed"];
const PAGE_SIZES = [10, 20, 50, 100];
const API_PAGE = 100; // DescribeStreamPackageHarvestJobs' largest PageSize
const REFRESH_MS = 2000;
export const RUNNING_REASON = "A Running job cannot be deleted; it can be once it has completed or failed.";

export function jobTime(job, field) {
  const parsed = parseTime(String(job[field] || ""), job.TimeFormat);
  return parsed.error ? NaN : parsed.seconds;
}

export function statusBadge(status) {
  return h("span", { className: `status status-${String(status).toLowerCase()}` }, status);
}

export function channelLink(name) {
  return h("a", { href: `#/channels/${encodeURIComponent(name)}` }, name);
}

// A modal question; resolves true when the person confirms.
export function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const titleId = "confirm-title";
    const dialog = h(
      "dialog",
      { "aria-labelledby": titleId, className: "confirm" },
      h("h2", { id: titleId }, title),
      h("p", {}, text),
      h(
        "div",
        { className: "actions" },
        h("button", { type: "button", className: "danger", onclick: () => close(true) }, confirmLabel),
        h("button", { type: "button", onclick: () => close(false) }, "Cancel"),
      ),
    );
    function close(answer) {
      dialog.close();
      dialog.remove();
      resolve(answer);
    }
    dialog.addEventListener("cancel", () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

// Delete jobs (one action for one, the all-or-nothing one for several); errors go to `alert`.
export async function deleteJobs(api, ids, alert) {
  const what = ids.length === 1 ? `harvest job ${ids[0]}` : `${ids.length} harvest jobs`;
  const sure = await confirmDialog(
    `Delete ${what}?`,
    "The job records are deleted; the VOD files in the bucket are kept.",
    "Delete",
  );
  if (!sure) return false;
  try {
    if (ids.length === 1) await api.call("DeleteStreamPackageHarvestJob", { ID: ids[0] });
    else await api.call("DeleteStreamPackageHarvestJobs", { IDs: ids });
    alert.textContent = "";
    return true;
  } catch (error) {
    alert.textContent = `${error.code}: ${error.message}`;
    return false;
  }
}

// One page of jobs, newest first. The API lists oldest first, so the page is cut from the end;
// a Status filter (the API has none) reads every job of the channel and filters here.
export async function fetchJobs(api, { channel, status, page, pageSize }) {
  const filter = channel ? { ChannelName: channel } : {};
  if (status) {
    const { items } = await api.all("DescribeStreamPackageHarvestJobs", "Infos", filter);
    const matching = items.filter((job) => job.Status === status).reverse();
    return { jobs: matching.slice((page - 1) * pageSize, page * pageSize), total: matching.length };
  }
  const head = await api.call("DescribeStreamPackageHarvestJobs", { ...filter, PageNum: 1, PageSize: 1 });
  const total = head.TotalNum;
  const end = total - (page - 1) * pageSize; // exclusive, counted oldest first
  const begin = Math.max(0, end - pageSize);
  const jobs = [];
  for (let apiPage = Math.floor(begin / API_PAGE) + 1; end > 0 && (apiPage - 1) * API_PAGE < end; apiPage += 1) {
    const answer = await api.call("DescribeStreamPackageHarvestJobs", {
      ...filter,
      PageNum: apiPage,
      PageSize: API_PAGE,
    });
    (answer.Infos || []).forEach((job, offset) => {
      const index = (apiPage - 1) * API_PAGE + offset;
      if (index >= begin && index < end) jobs.push(job);
    });
  }
  return { jobs: jobs.reverse(), total };
}

function select(label, id, options, value, onchange) {
  return h(
    "div",
    { className: "field inline" },
    h("label", { for: id }, label),
    h(
      "select",
      { id, onchange },
      options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === value }, text)),
    ),
  );
}

// The jobs table with its filters, paging, refresh and deletes. `base` is the page's hash path;
// `fixedChannel` hides the channel filter (a channel's own page).
async function jobsView(ctx, query, base, fixedChannel) {
  const channel = fixedChannel || query.get("channel") || "";
  const status = STATUSES.includes(query.get("status")) ? query.get("status") : "";
  const pageSize = PAGE_SIZES.includes(Number(query.get("size"))) ? Number(query.get("size")) : 20;
  let page = Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1);
  const selected = new Set();

  const navigate = (changes) => {
    // From the address as it is now: a control of a page being replaced may still fire.
    const next = new URLSearchParams(location.hash.split("?")[1] || "");
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    if (!("page" in changes)) next.delete("page");
    const text = next.toString();
    ctx.go(`${base}${text ? `?${text}` : ""}`);
  };

  const filters = h("div", { className: "filters" });
  if (!fixedChannel) {
    const channels = await ctx.api.all("DescribeStreamPackageChannels", "Infos");
    const names = channels.items.map((item) => item.Name);
    if (channel && !names.includes(channel)) names.push(channel);
    filters.append(
      select("Channel", "filter-channel", [["", "All channels"], ...names.map((name) => [name, name])], channel, (e) =>
        navigate({ channel: e.target.value }),
      ),
    );
  }
  filters.append(
    select("Status", "filter-status", [["", "All statuses"], ...STATUSES.map((s) => [s, s])], status, (e) =>
      navigate({ status: e.target.value }),
    ),
    select("Rows per page", "filter-size", PAGE_SIZES.map((n) => [String(n), String(n)]), String(pageSize), (e) =>
      navigate({ size: e.target.value }),
    ),
  );

  const alert = h("p", { className: "form-error", role: "alert" });
  const deleteSelected = h("button", { type: "button", className: "danger", disabled: true }, "Delete selected");
  const selectionReason = h("span", { className: "reason", id: uid("selection-reason") });
  deleteSelected.setAttribute("aria-describedby", selectionReason.id);
  const refreshButton = h("button", { type: "button" }, "Refresh");
  const refreshNote = h("span", { className: "hint", role: "status" });
  const tbody = h("tbody");
  const selectAll = h("input", { type: "checkbox", "aria-label": "Select all jobs on this page" });
  const pager = h("div", { className: "pager" });
  let shown = [];
  let timer = null;
  let refreshFailed = false;

  const table = h(
    "table",
    { className: "jobs", "aria-label": fixedChannel ? `Harvest jobs of ${fixedChannel}` : "Harvest jobs" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col", className: "select" }, selectAll),
        ["ID", "Status", "Channel", "Endpoint", "Start time", "End time", "Created time"].map((name) =>
          h("th", { scope: "col" }, name),
        ),
        h("th", { scope: "col" }, h("span", { className: "visually-hidden" }, "Actions")),
      ),
    ),
    tbody,
  );

  function updateSelection() {
    const jobs = shown.filter((job) => selected.has(job.ID));
    const running = jobs.filter((job) => job.Status === "Running");
    deleteSelected.disabled = jobs.length === 0 || running.length > 0;
    deleteSelected.textContent = jobs.length ? `Delete selected (${jobs.length})` : "Delete selected";
    selectionReason.textContent = running.length
      ? `${running.map((job) => job.ID).join(", ")} ${running.length === 1 ? "is" : "are"} Running. ${RUNNING_REASON}`
      : "";
    selectAll.checked = shown.length > 0 && jobs.length === shown.length;
  }

  function row(job) {
    const checkbox = h("input", {
      type: "checkbox",
      "aria-label": `Select ${job.ID}`,
      checked: selected.has(job.ID),
      onchange: (e) => {
        if (e.target.checked) selected.add(job.ID);
        else selected.delete(job.ID);
        updateSelection();
      },
    });
    const running = job.Status === "Running";
    const reasonId = `reason-${job.ID}`;
    const remove = h(
      "button",
      {
        type: "button",
        className: "danger small",
        disabled: running,
        title: running ? RUNNING_REASON : null,
        "aria-describedby": running ? reasonId : null,
        onclick: async () => {
          if (await deleteJobs(ctx.api, [job.ID], alert)) {
            selected.delete(job.ID);
            refresh();
          }
        },
      },
      "Delete",
    );
    const start = jobTime(job, "StartTime");
    const end = jobTime(job, "EndTime");
    return h(
      "tr",
      { "data-job": job.ID },
      h("td", { className: "select" }, checkbox),
      h("td", { className: "id" }, job.ID),
      h("td", {}, statusBadge(job.Status)),
      h("td", {}, channelLink(job.ChannelName)),
      h("td", {}, job.EndpointName),
      h("td", { title: job.StartTime }, formatDate(start)),
      h("td", { title: job.EndTime }, formatDate(end)),
      h("td", {}, formatDate(job.CreateTime)),
      h(
        "td",
        { className: "actions" },
        h("a", { href: `#/jobs/${encodeURIComponent(job.ID)}`, className: "button small" }, "Info"),
        remove,
        running ? h("span", { id: reasonId, className: "visually-hidden" }, RUNNING_REASON) : null,
      ),
    );
  }

  async function refresh() {
    clearTimeout(timer);
    let result;
    try {
      result = await fetchJobs(ctx.api, { channel, status, page, pageSize });
    } catch (error) {
      if (!ctx.alive()) return;
      alert.textContent = `${error.code}: ${error.message}`;
      refreshFailed = true;
      // Keep watching Running jobs through a passing failure (a rate limit, a restart).
      if (shown.some((job) => job.Status === "Running")) timer = setTimeout(refresh, REFRESH_MS * 2);
      return;
    }
    if (refreshFailed) alert.textContent = ""; // a delete's error stays until the next delete
    refreshFailed = false;
    if (!ctx.alive()) return;
    const pages = Math.max(1, Math.ceil(result.total / pageSize));
    if (page > pages) {
      page = pages;
      return refresh();
    }
    shown = result.jobs;
    for (const id of [...selected]) if (!shown.some((job) => job.ID === id)) selected.delete(id);
    replaceChildren(
      tbody,
      shown.length
        ? shown.map(row)
        : h("tr", {}, h("td", { colspan: 9, className: "empty" }, status || channel ? "No jobs match." : "No harvest jobs yet.")),
    );
    replaceChildren(
      pager,
      h("button", { type: "button", disabled: page <= 1, onclick: () => navigate({ page: String(page - 1) }) }, "Previous page"),
      h("span", { "aria-live": "polite" }, `Page ${page} of ${pages} · ${result.total} job${result.total === 1 ? "" : "s"}`),
      h("button", { type: "button", disabled: page >= pages, onclick: () => navigate({ page: String(page + 1) }) }, "Next page"),
    );
    updateSelection();
    const running = shown.some((job) => job.Status === "Running");
    refreshNote.textContent = running ? "Refreshing every 2 s while a job is Running." : "";
    if (running) timer = setTimeout(refresh, REFRESH_MS);
  }

  selectAll.addEventListener("change", () => {
    for (const job of shown) {
      if (selectAll.checked) selected.add(job.ID);
      else selected.delete(job.ID);
    }
    for (const box of tbody.querySelectorAll("input[type=checkbox]")) box.checked = selectAll.checked;
    updateSelection();
  });
  deleteSelected.addEventListener("click", async () => {
    const ids = shown.filter((job) => selected.has(job.ID)).map((job) => job.ID);
    if (ids.length && (await deleteJobs(ctx.api, ids, alert))) {
      selected.clear();
      refresh();
    }
  });
  refreshButton.addEventListener("click", () => refresh());
  ctx.onLeave(() => clearTimeout(timer));

  await refresh();
  return h(
    "section",
    { className: "jobs-view" },
    h("div", { className: "toolbar" }, filters, h("div", { className: "toolbar-actions" }, refreshButton, deleteSelected)),
    selectionReason,
    alert,
    h("div", { className: "table-wrap" }, table),
    h("div", { className: "table-foot" }, pager, h("span", { className: "hint" }, `Times in ${timeZoneLabel()}. `, refreshNote)),
  );
}

export async function renderJobs(ctx, query) {
  document.title = "Harvest Jobs";
  const view = await jobsView(ctx, query, "#/jobs", "");
  if (!ctx.alive()) return;
  const createLink = h("button", { type: "button", className: "primary", onclick: () => ctx.go("#/jobs/new") }, "Create Harvest Job");
  replaceChildren(ctx.main, h("div", { className: "page-head" }, h("h1", {}, "Harvest Jobs"), createLink), view);
}

export async function renderChannels(ctx) {
  document.title = "Channels · Harvest Jobs";
  const { items } = await ctx.api.all("DescribeStreamPackageChannels", "Infos");
  if (!ctx.alive()) return;
  const rows = items.map((channel) =>
    h(
      "tr",
      {},
      h("td", {}, channelLink(channel.Name)),
      h("td", { className: "id" }, channel.Id),
      h("td", {}, channel.Protocol || "mixed"),
      h("td", {}, (channel.Points.Endpoints || []).map((endpoint) => endpoint.Name).join(", ")),
    ),
  );
  replaceChildren(
    ctx.main,
    h("div", { className: "page-head" }, h("h1", {}, "Channels")),
    h(
      "div",
      { className: "table-wrap" },
      h(
        "table",
        { "aria-label": "Channels" },
        h("thead", {}, h("tr", {}, ["Name", "ID", "Protocol", "Endpoints"].map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 4, className: "empty" }, "No channels in the registry."))),
      ),
    ),
  );
}

export async function renderChannel(ctx, name, query) {
  document.title = `${name} · Channels · Harvest Jobs`;
  const [{ items }, settings] = await Promise.all([
    ctx.api.all("DescribeStreamPackageChannels", "Infos"),
    ctx.settings(),
  ]);
  const listed = items.find((item) => item.Name === name);
  if (!listed) {
    replaceChildren(ctx.main, h("h1", {}, `Channel ${name}`), h("p", { role: "alert" }, `There is no channel named ${name}.`));
    return;
  }
  // The channel's own action, by Id as StreamPackage names it.
  const { Info: channel } = await ctx.api.call("DescribeStreamPackageChannel", { Id: listed.Id });
  const windows = new Map(settings.Endpoints.map((e) => [`${e.ChannelName}/${e.EndpointName}`, e.StartoverWindow]));
  const view = await jobsView(ctx, query, `#/channels/${encodeURIComponent(name)}`, name);
  if (!ctx.alive()) return;
  const endpoints = (channel.Points.Endpoints || []).map((endpoint) => {
    const window = windows.get(`${name}/${endpoint.Name}`);
    const create = `#/jobs/new?channel=${encodeURIComponent(name)}&endpoint=${encodeURIComponent(endpoint.Name)}`;
    return h(
      "tr",
      {},
      h("td", {}, endpoint.Name),
      h("td", {}, endpoint.Protocol),
      h("td", { className: "url" }, endpoint.Url),
      h("td", {}, window ? describeWindow(window) : `${endpoint.TimeShiftDuration} d`),
      h("td", {}, h("a", { href: create, className: "button small", "aria-label": `Create Harvest Job from ${endpoint.Name}` }, "Create Harvest Job")),
    );
  });
  replaceChildren(
    ctx.main,
    h("p", { className: "crumbs" }, h("a", { href: "#/channels" }, "Channels"), " / ", name),
    h("div", { className: "page-head" }, h("h1", {}, `Channel ${name}`)),
    h(
      "dl",
      { className: "facts" },
      h("dt", {}, "ID"),
      h("dd", { className: "id" }, channel.Id),
      h("dt", {}, "Protocol"),
      h("dd", {}, channel.Protocol || "mixed"),
    ),
    h("h2", {}, "Endpoints"),
    h(
      "div",
      { className: "table-wrap" },
      h(
        "table",
        { "aria-label": `Endpoints of ${name}` },
        h(
          "thead",
          {},
          h("tr", {}, ["Name", "Protocol", "URL", "Startover window"].map((col) => h("th", { scope: "col" }, col)), h("th", { scope: "col" }, h("span", { className: "visually-hidden" }, "Actions"))),
        ),
        h("tbody", {}, endpoints),
      ),
    ),
    h("h2", {}, "Harvest jobs"),
    view,
  );
}
