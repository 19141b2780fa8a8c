// Create Harvest Job: the seed's rules checked as the person types, every API error beside its field.
import { field, h, replaceChildren } from "./dom.js";
import {
  EPOCH_FORMAT,
  ISO_FORMAT,
  checkCallback,
  checkDestination,
  checkId,
  checkManifest,
  checkWindow,
  describeWindow,
  effectiveManifest,
  formatTime,
  parseTime,
} from "./rules.js";

// Which field an API error is about (README, "Error codes"). mdp's vocabulary names a field in a
// few codes only; the plain InvalidParameter / InvalidParameterValue messages start with the
// parameter's name, so that first word decides.
const FIELD_BY_CODE = {
  "InvalidParameter.Id": "ID",
  ResourceInUse: "ID",
  "InvalidParameter.Name": "Endpoint",
  "InvalidParameter.NotFound": "Endpoint",
  "InvalidParameter.Url": "CallbackURL",
};
const FIELD_BY_PARAMETER = { ChannelName: "Endpoint", EndpointName: "Endpoint" };
const FIELDS = ["ID", "TimeFormat", "StartTime", "EndTime", "Destination", "Manifest", "CallbackURL"];
const QUICK_CHOICES = [
  ["Last minute", 60],
  ["Last 5 minutes", 300],
  ["Last 15 minutes", 900],
  ["Last hour", 3600],
];
// A window ending this long ago: the segment holding "now" is still being written at the origin.
const QUICK_END_LAG = 2;

export function fieldForError(error) {
  if (FIELD_BY_CODE[error.code]) return FIELD_BY_CODE[error.code];
  const first = (/^(\w+)/.exec(error.message || "") || [])[1] || "";
  if (error.code === "MissingParameter") {
    const name = (/^(\w+) is required/.exec(error.message) || [])[1] || "";
    return FIELD_BY_PARAMETER[name] || name;
  }
  if (error.code === "InvalidParameter" || error.code === "InvalidParameterValue") {
    if (FIELD_BY_PARAMETER[first]) return FIELD_BY_PARAMETER[first];
    if (FIELDS.includes(first)) return first;
  }
  return "";
}

export async function renderCreate(ctx, query) {
  document.title = "Create Harvest Job";
  const settings = await ctx.settings();
  if (!ctx.alive()) return;
  const endpoints = settings.Endpoints;
  const windowOf = (value) => (endpoints.find((e) => `${e.ChannelName}/${e.EndpointName}` === value) || {}).StartoverWindow;
  // Which manifests existing jobs wrote, for the overwrite warning: read in the background, and
  // without it (a failure, a rate limit on a very long list) the page still works, unwarned.
  const written = new Map();
  ctx.api
    .all("DescribeStreamPackageHarvestJobs", "Infos")
    .then(({ items }) => {
      for (const job of items) written.set(`${job.Destination}${job.Manifest}`, job.ID);
      if (ctx.alive()) validate();
    })
    .catch(() => {});

  const byChannel = new Map();
  for (const endpoint of endpoints) {
    if (!byChannel.has(endpoint.ChannelName)) byChannel.set(endpoint.ChannelName, []);
    byChannel.get(endpoint.ChannelName).push(endpoint);
  }
  const wanted = `${query.get("channel") || ""}/${query.get("endpoint") || ""}`;
  const endpointSelect = h(
    "select",
    { id: "create-endpoint", name: "Endpoint" },
    [...byChannel].map(([channel, list]) =>
      h(
        "optgroup",
        { label: channel },
        list.map((e) => {
          const value = `${e.ChannelName}/${e.EndpointName}`;
          const text = `${e.ChannelName} / ${e.EndpointName} (${e.Protocol}, startover window ${describeWindow(e.StartoverWindow)})`;
          return h("option", { value, selected: value === wanted }, text);
        }),
      ),
    ),
  );
  const formatSelect = h(
    "select",
    { id: "create-time-format", name: "TimeFormat" },
    h("option", { value: EPOCH_FORMAT }, "Epoch seconds"),
    h("option", { value: ISO_FORMAT }, "ISO-8601"),
  );
  const text = (id, attrs = {}) => h("input", { id, autocomplete: "off", spellcheck: "false", ...attrs });

  const fields = {
    ID: field({ label: "ID", input: text("create-id", { name: "ID" }), hint: "Up to 128 letters, digits, underscores (_) and dashes (-)." }),
    Endpoint: field({ label: "Origin endpoint", input: endpointSelect }),
    TimeFormat: field({ label: "Time format", input: formatSelect }),
    StartTime: field({ label: "Start time", input: text("create-start", { name: "StartTime" }) }),
    EndTime: field({ label: "End time", input: text("create-end", { name: "EndTime" }) }),
    Destination: field({
      label: "COS storage path",
      input: text("create-destination", {
        name: "Destination",
        placeholder: settings.DefaultDestination || `https://<bucket>-<appid>.cos.${settings.Region}.myqcloud.com/<path>/`,
      }),
      hint: settings.DefaultDestination
        ? `Leave empty for ${settings.DefaultDestination}. The bucket must be in ${settings.Region}.`
        : `A bucket in ${settings.Region}.`,
    }),
    Manifest: field({
      label: "Manifest key",
      input: text("create-manifest", { name: "Manifest", placeholder: "<ID>/index.m3u8" }),
      hint: "The parent manifest's path in the bucket. Leave empty for <ID>/index.m3u8.",
    }),
    CallbackURL: field({
      label: "Callback URL",
      input: text("create-callback", { name: "CallbackURL", type: "url", placeholder: "https://" }),
      hint: "Optional: the job's record is POSTed here when it ends.",
    }),
  };
  const touched = new Set();
  const apiErrors = {}; // kept beside a field until that field is changed
  const overwrite = h("p", { className: "warning", role: "status" });
  const formError = h("p", { className: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", className: "primary" }, "Create");

  const value = (name) => fields[name].input.value.trim();
  const format = () => formatSelect.value;

  function windowHint() {
    const window = windowOf(endpointSelect.value);
    fields.Endpoint.setHint(window ? `Harvestable: the last ${describeWindow(window)} (the startover window).` : "");
  }

  // Every rule, by field; shows only the fields the person has touched (or all, on submit).
  function validate(showAll = false) {
    const errors = {};
    errors.ID = checkId(value("ID"));
    if (!endpointSelect.value) errors.Endpoint = "This service has no channel endpoints to harvest from.";
    const start = parseTime(value("StartTime"), format());
    const end = parseTime(value("EndTime"), format());
    if (start.error) errors.StartTime = start.error;
    if (end.error) errors.EndTime = end.error;
    if (!start.error && !end.error) {
      const now = Date.now() / 1000;
      Object.assign(errors, checkWindow(start.seconds, end.seconds, now, windowOf(endpointSelect.value), settings.MaxDuration));
    }
    errors.Destination = checkDestination(value("Destination"), settings.Region, settings.AllowedBuckets, settings.DefaultDestination);
    errors.Manifest = checkManifest(value("Manifest"));
    errors.CallbackURL = checkCallback(value("CallbackURL"));
    for (const [name, item] of Object.entries(fields)) {
      if (showAll || touched.has(name)) item.setError(errors[name] || apiErrors[name] || "");
    }
    const destination = value("Destination") || settings.DefaultDestination;
    const manifest = effectiveManifest(value("Manifest"), value("ID") || "<ID>");
    const previous = written.get(`${destination}${manifest}`);
    overwrite.textContent =
      previous && value("ID") && !errors.Manifest
        ? `Harvest job ${previous} already uses Manifest key ${manifest} in this storage path: ` +
          "the newest playlist for the asset overwrites the existing one."
        : "";
    return Object.entries(errors).filter(([, message]) => message);
  }

  for (const [name, item] of Object.entries(fields)) {
    for (const type of ["input", "change"]) {
      item.input.addEventListener(type, () => {
        touched.add(name);
        delete apiErrors[name];
        validate();
      });
    }
  }
  endpointSelect.addEventListener("change", windowHint);
  let lastFormat = format();
  formatSelect.addEventListener("change", () => {
    // Keep the times the person chose, written in the new format.
    for (const name of ["StartTime", "EndTime"]) {
      const parsed = parseTime(value(name), lastFormat);
      if (!parsed.error) fields[name].input.value = formatTime(parsed.seconds, format());
    }
    lastFormat = format();
    validate();
  });

  const quick = h(
    "div",
    { className: "quick", role: "group", "aria-label": "Quick choices" },
    QUICK_CHOICES.map(([label, seconds]) =>
      h(
        "button",
        {
          type: "button",
          className: "small",
          onclick: () => {
            const end = Math.floor(Date.now() / 1000) - QUICK_END_LAG;
            fields.StartTime.input.value = formatTime(end - seconds, format());
            fields.EndTime.input.value = formatTime(end, format());
            touched.add("StartTime").add("EndTime");
            validate();
          },
        },
        label,
      ),
    ),
  );

  const form = h(
    "form",
    { className: "card", "aria-labelledby": "create-title", novalidate: true },
    h("p", { className: "crumbs" }, h("a", { href: "#/jobs" }, "Harvest Jobs"), " / Create"),
    h("h1", { id: "create-title" }, "Create Harvest Job"),
    h("fieldset", {}, h("legend", {}, "Basic information"), fields.ID.element, fields.Endpoint.element),
    h(
      "fieldset",
      {},
      h("legend", {}, "Start and end"),
      fields.TimeFormat.element,
      quick,
      h("div", { className: "pair" }, fields.StartTime.element, fields.EndTime.element),
      h("p", { className: "hint" }, `At most 24 h; the end must be in the past and the start inside the endpoint's startover window.`),
    ),
    h("fieldset", {}, h("legend", {}, "Destination"), fields.Destination.element, fields.Manifest.element, overwrite, fields.CallbackURL.element),
    formError,
    h("div", { className: "actions" }, submit, h("a", { href: "#/jobs", className: "button" }, "Cancel")),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    const errors = validate(true);
    if (errors.length) {
      fields[errors[0][0]].input.focus();
      return;
    }
    const [channel, endpoint] = endpointSelect.value.split("/");
    const params = {
      ID: value("ID"),
      ChannelName: channel,
      EndpointName: endpoint,
      TimeFormat: format(),
      StartTime: value("StartTime"),
      EndTime: value("EndTime"),
    };
    for (const name of ["Destination", "Manifest", "CallbackURL"]) if (value(name)) params[name] = value(name);
    submit.disabled = true;
    try {
      const { Info } = await ctx.api.call("CreateStreamPackageHarvestJob", params);
      ctx.go(`#/jobs/${encodeURIComponent(Info.ID)}`);
    } catch (error) {
      const name = fieldForError(error);
      if (fields[name]) {
        apiErrors[name] = `${error.message} (${error.code})`;
        fields[name].setError(apiErrors[name]);
        fields[name].input.focus();
      } else {
        formError.textContent = `${error.code}: ${error.message}`;
      }
    } finally {
      submit.disabled = false;
    }
  });

  windowHint();
  replaceChildren(ctx.main, form);
  fields.ID.input.focus();
}
