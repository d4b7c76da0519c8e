// effvid's page: a video to /v1/predict and /v1/explain, the camera to /v1/stream.
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;

async function loadModel() {
  const response = await fetch("/v1/model");
  model = await response.json();
  const classes = model.class_names.length;
  $("model-name").textContent = `${model.model} (${model.runtime}), ${classes} classes`;
  if (!model.streaming) {
    $("camera-start").disabled = true;
    $("camera-note").textContent = model.stream_refusal;
  }
  document.body.dataset.state = "ready";
}

async function postVideo(path, file) {
  const form = new FormData();
  form.append("video", file, file.name);
  const response = await fetch(path, { method: "POST", body: form });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function row(label, score, text) {
  const item = document.createElement("li");
  item.className = "row";
  const name = document.createElement("span");
  name.textContent = label;
  const meter = document.createElement("div");
  meter.className = "meter";
  const fill = document.createElement("div");
  fill.style.width = `${Math.round(score * 100)}%`;
  meter.append(fill);
  const value = document.createElement("span");
  value.textContent = text ?? score.toFixed(3);
  item.append(name, meter, value);
  return item;
}

function showTop(top) {
  $("top-label").textContent = top[0].label;
  $("top-score").textContent = top[0].score.toFixed(3);
  $("top-list").replaceChildren(...top.map((entry) => row(entry.label, entry.score)));
}

function showTimeline(windows) {
  const rows = windows.map((w) => {
    const span = `${w.start.toFixed(1)}-${w.end.toFixed(1)} s`;
    return row(`${span} ${w.top[0].label}`, w.top[0].score);
  });
  $("timeline").replaceChildren(...rows);
}

async function analyse(file) {
  document.body.dataset.state = "busy";
  $("status").textContent = `analysing ${file.name}…`;
  $("results").hidden = true;
  try {
    showTop((await postVideo("/v1/predict", file)).top);
    showTimeline((await postVideo("/v1/predict?timeline=true&top_k=1", file)).timeline);
    $("results").hidden = false;
    if (model.explain) {
      const explained = await postVideo("/v1/explain", file);
      $("explain").src = `data:image/gif;base64,${explained.gif}`;
      $("explain-caption").textContent =
        `${explained.method}: ${explained.source}; ${explained.label} ${explained.score.toFixed(2)}`;
    }
    $("status").textContent = file.name;
    document.body.dataset.state = "done";
  } catch (error) {
    $("status").textContent = error.message;
    document.body.dataset.state = "error";
  }
}

function watchDrops() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) analyse(event.target.files[0]);
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) analyse(event.dataTransfer.files[0]);
  });
}

// The camera: every new video frame, as a JPEG, to /v1/stream; at most two frames unanswered
// (a slower server gets fewer frames, never a queue).
async function startCamera() {
  $("camera-start").disabled = true;
  const video = $("camera");
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    await video.play();
  } catch (error) {
    $("camera-note").textContent = `no camera: ${error.message}`;
    return;
  }
  $("camera-view").hidden = false;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/stream`);
  const canvas = document.createElement("canvas");
  let ready = null;
  let unanswered = 0;

  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.ready) {
      ready = message;
      return;
    }
    unanswered = Math.max(0, unanswered - 1);
    if (message.error) {
      $("camera-note").textContent = message.error;
      return;
    }
    $("stream-label").textContent = message.label;
    $("stream-score").textContent = message.score.toFixed(2);
    $("stream-bar").style.width = `${Math.round(message.score * 100)}%`;
    document.body.dataset.streamFrames = String(message.frame + 1);
  };
  socket.onclose = (event) => {
    if (event.reason) $("camera-note").textContent = event.reason;
  };

  const send = () => {
    if (ready && socket.readyState === WebSocket.OPEN && unanswered < 2) {
      // The server resizes to the model's short side; twice that is plenty to send.
      const shortest = Math.min(video.videoWidth, video.videoHeight);
      const scale = Math.min(1, (2 * ready.short_side) / shortest);
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      unanswered += 1;
      canvas.toBlob((blob) => blob.arrayBuffer().then((bytes) => socket.send(bytes)), "image/jpeg", 0.92);
    }
    next();
  };
  const next = () => {
    if (socket.readyState > WebSocket.OPEN) return;
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(send);
    else setTimeout(send, 1000 / 15);
  };
  next();
}

window.addEventListener("DOMContentLoaded", () => {
  watchDrops();
  $("camera-start").addEventListener("click", startCamera);
  loadModel().catch((error) => {
    $("model-name").textContent = `cannot read the model: ${error.message}`;
  });
});
