// The VOD player: hls.js (bundled from npm, never a CDN) on Media Source Extensions, or the
// browser's own HLS where it has one (Safari).
import Hls from "hls.js";

import { h } from "./dom.js";

// A <video> playing `url`, and a status line saying what went wrong when it cannot.
export function createPlayer(url) {
  const video = h("video", { controls: true, playsinline: true, preload: "metadata", "aria-label": "VOD player" });
  const status = h("p", { className: "player-status", role: "status" });
  let hls = null;
  if (Hls.isSupported()) {
    hls = new Hls({ enableWorker: false }); // one static file: no worker script to serve
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      const http = data.response && data.response.code ? ` (HTTP ${data.response.code})` : "";
      status.textContent =
        `The player cannot load the VOD${http}: ${data.details}. ` +
        "A COS bucket must allow this page's origin in its CORS rules.";
      hls.destroy();
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
  } else {
    status.textContent = "This browser plays neither HLS nor Media Source Extensions.";
  }
  const element = h("div", { className: "player" }, video, status);
  return {
    element,
    video,
    destroy() {
      if (hls) hls.destroy();
    },
  };
}
