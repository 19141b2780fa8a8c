// The Create rules, checked as the person types. They mirror the service's own (README, "Rules and
// defaults"); the service still checks everything, and its errors are shown beside the field too.

const ID = /^[A-Za-z0-9_-]{1,128}$/;
const EPOCH = /^[1-9][0-9]{0,11}$/;
const ISO = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})$/;
const COS_HOST =
  /^(?<name>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)-(?<appid>[0-9]+)\.cos\.(?<region>[a-z0-9]+(?:-[a-z0-9]+)*)\.(?:myqcloud\.com|tencentcos\.cn)$/;

export const EPOCH_FORMAT = "Epoch seconds";
export const ISO_FORMAT = "ISO-8601";

export function checkId(id) {
  if (!id) return "Give the job an ID.";
  if (id.length > 128) return `The ID is ${id.length} characters; at most 128 are allowed.`;
  if (!ID.test(id)) return "Use only letters, digits, underscores (_) and dashes (-).";
  return "";
}

// Seconds since the epoch, or a message saying why the text is not a time in this format.
export function parseTime(text, format) {
  const value = text.trim();
  if (!value) return { error: "Required." };
  if (format === EPOCH_FORMAT) {
    if (!EPOCH.test(value)) return { error: "Epoch seconds are a positive whole number, like 1764000000." };
    return { seconds: Number(value) };
  }
  if (!ISO.test(value)) {
    return { error: "ISO-8601 with a zone, like 2026-11-23T10:00:00+08:00 or 2026-11-23T02:00:00Z." };
  }
  const normalized = value.replace(",", ".").replace(/([+-]\d{2})(\d{2})$/, "$1:$2");
  const millis = Date.parse(normalized);
  if (Number.isNaN(millis)) return { error: "Not a real date and time." };
  return { seconds: millis / 1000 };
}

export function formatTime(seconds, format) {
  if (format === EPOCH_FORMAT) return String(Math.floor(seconds));
  return new Date(Math.floor(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

export function describeWindow(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

// Errors by field name ("StartTime", "EndTime"), for a window in a given endpoint.
export function checkWindow(start, end, now, startoverWindow, maxDuration) {
  const errors = {};
  if (start >= end) {
    errors.EndTime = "End time must be later than Start time.";
  } else if (end - start > maxDuration) {
    errors.EndTime = `The window is ${Math.round(end - start)} s; at most ${maxDuration} s (24 h) is allowed.`;
  } else if (end > now) {
    errors.EndTime = `End time is ${Math.ceil(end - now)} s in the future; only time that has passed can be harvested.`;
  }
  if (startoverWindow && start < now - startoverWindow) {
    errors.StartTime =
      `Start time is ${Math.round(now - start)} s ago, outside the endpoint's startover window ` +
      `(${describeWindow(startoverWindow)}).`;
  }
  return errors;
}

export function parseDestination(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return { error: "Not a URL: give https://<bucket>-<appid>.cos.<region>.myqcloud.com/<path>/" };
  }
  const match = COS_HOST.exec(parsed.hostname);
  if (parsed.protocol !== "https:" || !match) {
    return { error: "A COS bucket URL looks like https://<bucket>-<appid>.cos.<region>.myqcloud.com/<path>/" };
  }
  const { name, appid, region } = match.groups;
  return { bucket: `${name}-${appid}`, region, prefix: decodeURIComponent(parsed.pathname.slice(1)) };
}

export function checkDestination(url, serviceRegion, allowedBuckets, defaultDestination) {
  if (!url) return defaultDestination ? "" : "Required: this service has no default COS storage path.";
  const parsed = parseDestination(url);
  if (parsed.error) return parsed.error;
  if (parsed.region !== serviceRegion) {
    return `The bucket is in ${parsed.region}; this service harvests in ${serviceRegion}, so choose a bucket there.`;
  }
  if (allowedBuckets.length && !allowedBuckets.includes(parsed.bucket)) {
    return `This service may not write to bucket ${parsed.bucket} (allowed: ${allowedBuckets.join(", ")}).`;
  }
  return "";
}

export function checkManifest(key) {
  if (!key) return "";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(key)) return "The key contains a control character.";
  if (key.includes("\\")) return "Use / between the parts of the key, not \\.";
  if (key.startsWith("/")) return "The key is relative to the storage path: remove the leading /.";
  if (new TextEncoder().encode(key).length > 1024) return "The key is longer than 1024 bytes.";
  if (key.split("/").includes("..")) return "The key may not contain a .. segment.";
  if (key.endsWith("/")) return "The key names a file (the parent manifest), not a folder.";
  return "";
}

// The manifest key the service will use: '//' and './' folded away, <ID>/index.m3u8 when empty.
export function effectiveManifest(key, id) {
  if (!key) return `${id}/index.m3u8`;
  return key
    .split("/")
    .filter((part) => part && part !== ".")
    .join("/");
}

export function checkCallback(url) {
  if (!url) return "";
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") return "";
  } catch {
    // falls through to the message
  }
  return "A callback URL is an http:// or https:// URL.";
}
