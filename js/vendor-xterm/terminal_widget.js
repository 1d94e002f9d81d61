// The terminal widget's view (anywidget): xterm.js in the cell, keys to the kernel, output
// from it. Bundled with xterm.js into agentos_nb/jupyter/static/terminal.js by ./vendor.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";

function render({ model, el }) {
  const term = new Terminal({
    cols: model.get("cols"),
    rows: model.get("rows"),
    cursorBlink: true,
    convertEol: false,
    scrollback: 2000,
    fontSize: 13,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  const box = document.createElement("div");
  box.className = "agentos-terminal";
  const status = document.createElement("div");
  status.className = "agentos-terminal-status";
  el.append(box, status);
  term.open(box);

  const showStatus = () => {
    status.textContent = model.get("status");
  };
  const onMessage = (msg) => {
    if (msg.type === "output") {
      term.write(msg.data);
    } else if (msg.type === "reset") {
      term.reset();
    }
  };
  const onSize = () => {
    if (term.cols !== model.get("cols") || term.rows !== model.get("rows")) {
      term.resize(model.get("cols"), model.get("rows"));
    }
  };
  // The width follows the cell's; the height stays what the kernel asked for.
  const fitWidth = () => {
    if (!model.get("fit_width")) return;
    const proposed = fit.proposeDimensions();
    if (proposed && proposed.cols > 1 && proposed.cols !== model.get("cols")) {
      model.send({ type: "resize", cols: proposed.cols, rows: model.get("rows") });
    }
  };
  model.on("msg:custom", onMessage);
  model.on("change:cols", onSize);
  model.on("change:rows", onSize);
  model.on("change:status", showStatus);
  const keys = term.onData((data) => model.send({ type: "keys", data }));
  const observer = new ResizeObserver(() => fitWidth());
  observer.observe(el);
  showStatus();
  model.send({ type: "hello" }); // the kernel answers with what this view has not seen
  return () => {
    observer.disconnect();
    keys.dispose();
    model.off("msg:custom", onMessage);
    model.off("change:cols", onSize);
    model.off("change:rows", onSize);
    model.off("change:status", showStatus);
    term.dispose();
  };
}

export default { render };
