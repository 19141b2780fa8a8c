// A few DOM helpers: the console is small enough that plain elements beat a framework.

let nextId = 0;

export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

// h("button", { type: "button", onclick }, "Delete") -> <button type="button">Delete</button>
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "className") element.className = value;
    else if (name === "value") element.value = value;
    else if (name === "checked" || name === "selected" || name === "disabled") element[name] = Boolean(value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function replaceChildren(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

// A labelled input with a place for its hint and error, both its accessible description.
export function field({ label, input, hint = "" }) {
  const id = input.id || uid("field");
  input.id = id;
  const hintEl = h("p", { className: "hint", id: `${id}-hint` }, hint);
  const errorEl = h("p", { className: "field-error", id: `${id}-error`, "aria-live": "polite" });
  const describe = () => {
    const ids = [errorEl.textContent ? errorEl.id : "", hintEl.textContent ? hintEl.id : ""].filter(Boolean);
    if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
    else input.removeAttribute("aria-describedby");
  };
  describe();
  const wrapper = h("div", { className: "field" }, h("label", { for: id }, label), input, hint ? hintEl : null, errorEl);
  return {
    element: wrapper,
    input,
    setError(message) {
      errorEl.textContent = message || "";
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      describe();
    },
    setHint(text) {
      hintEl.textContent = text;
      if (!hintEl.isConnected && text) errorEl.before(hintEl);
      describe();
    },
    get error() {
      return errorEl.textContent;
    },
  };
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

function pad(number) {
  return String(number).padStart(2, "0");
}

// Local time, to the second, unambiguous across locales: 2026-11-30 09:12:03.
export function formatDate(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const date = new Date(seconds * 1000);
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

export function timeZoneLabel() {
  const offset = -new Date().getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return `UTC${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}
