// The console is just another API 3.0 client: every call is a POST signed with TC3-HMAC-SHA256,
// computed here with WebCrypto from the SecretId/SecretKey kept in sessionStorage. The key never
// leaves the browser except as the signature it produces.

export const SERVICE = "mdp";
export const VERSION = "2020-05-27";
const CONTENT_TYPE = "application/json";
const KEY_STORAGE = "harvest-console-key";

export class ApiError extends Error {
  constructor(code, message, requestId = "") {
    super(message);
    this.code = code;
    this.requestId = requestId;
  }

  // The field an InvalidParameter.<Field> / InvalidParameterValue.<Field> code names, if any.
  get field() {
    const match = /^(?:InvalidParameter|InvalidParameterValue|MissingParameter)\.(\w+)$/.exec(this.code);
    return match ? match[1] : "";
  }
}

const encoder = new TextEncoder();

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(text) {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

async function hmac(key, text) {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(text));
}

// Browsers give WebCrypto (crypto.subtle) only to secure contexts: https://, or http://localhost
// and 127.0.0.1 on the machine itself. Elsewhere it is undefined, and signing cannot work.
export function webCryptoAvailable() {
  return globalThis.isSecureContext !== false && Boolean(globalThis.crypto && globalThis.crypto.subtle);
}

// The headers of one signed POST (docs/platform/api3.md "TC3-HMAC-SHA256"; the SDK's own algorithm).
export async function signedHeaders({ secretId, secretKey, host, action, region, body, timestamp }) {
  const date = new Date(timestamp * 1000).toISOString().slice(0, 10);
  const canonicalRequest = [
    "POST",
    "/",
    "",
    `content-type:${CONTENT_TYPE}\nhost:${host}\n`,
    "content-type;host",
    await sha256Hex(body),
  ].join("\n");
  const scope = `${date}/${SERVICE}/tc3_request`;
  const toSign = ["TC3-HMAC-SHA256", String(timestamp), scope, await sha256Hex(canonicalRequest)].join("\n");
  const secretDate = await hmac(`TC3${secretKey}`, date);
  const secretService = await hmac(secretDate, SERVICE);
  const secretSigning = await hmac(secretService, "tc3_request");
  const signature = hex(await hmac(secretSigning, toSign));
  return {
    "Content-Type": CONTENT_TYPE,
    "X-TC-Action": action,
    "X-TC-Version": VERSION,
    "X-TC-Region": region,
    "X-TC-Timestamp": String(timestamp),
    Authorization:
      `TC3-HMAC-SHA256 Credential=${secretId}/${scope}, SignedHeaders=content-type;host, ` +
      `Signature=${signature}`,
  };
}

export const session = {
  load() {
    try {
      const stored = JSON.parse(sessionStorage.getItem(KEY_STORAGE) || "null");
      return stored && stored.secretId && stored.secretKey ? stored : null;
    } catch {
      return null;
    }
  },
  save(secretId, secretKey) {
    sessionStorage.setItem(KEY_STORAGE, JSON.stringify({ secretId, secretKey }));
  },
  clear() {
    sessionStorage.removeItem(KEY_STORAGE);
  },
};

export class Api {
  // `endpoint`: the API's URL (the service root); `region`: the region it answers for.
  constructor(endpoint, region) {
    this.endpoint = new URL(endpoint, location.href);
    this.region = region;
  }

  async call(action, params = {}, key = session.load()) {
    if (!key) throw new ApiError("AuthFailure", "Sign in first.");
    const body = JSON.stringify(params);
    const headers = await signedHeaders({
      secretId: key.secretId,
      secretKey: key.secretKey,
      host: this.endpoint.host,
      action,
      region: this.region,
      body,
      timestamp: Math.floor(Date.now() / 1000),
    });
    let response;
    try {
      response = await fetch(this.endpoint, { method: "POST", headers, body, cache: "no-store" });
    } catch (error) {
      throw new ApiError("NetworkError", `The API at ${this.endpoint.origin} cannot be reached (${error.message}).`);
    }
    let answer;
    try {
      answer = (await response.json()).Response;
    } catch {
      throw new ApiError("NetworkError", `The API answered HTTP ${response.status} without an API 3.0 body.`);
    }
    if (!answer) throw new ApiError("InternalError", "The API's answer has no Response.");
    if (answer.Error) throw new ApiError(answer.Error.Code, answer.Error.Message, answer.RequestId);
    return answer;
  }

  // Every page of a listing action, in the API's order (PageSize 100, the harvest-job maximum).
  async all(action, field, params = {}) {
    const items = [];
    for (let page = 1; ; page += 1) {
      const answer = await this.call(action, { ...params, PageNum: page, PageSize: 100 });
      const infos = answer[field] || [];
      items.push(...infos);
      if (infos.length < 100 || items.length >= answer.TotalNum) return { items, total: answer.TotalNum };
    }
  }
}
