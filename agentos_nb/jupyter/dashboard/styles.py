"""The dashboard's style sheet, scoped under `.agentos-dashboard`.

Colours come from JupyterLab's theme variables where one fits (so the light and the dark
theme both read well), with fallbacks for other front ends; status colours are fixed tones.
"""

from __future__ import annotations

STYLE = """
<style>
.agentos-dashboard {
  --ao-fg: var(--jp-ui-font-color1, #1f2328);
  --ao-fg-muted: var(--jp-ui-font-color2, #59636e);
  --ao-bg: var(--jp-layout-color0, #ffffff);
  --ao-bg-soft: var(--jp-layout-color2, #f6f8fa);
  --ao-line: var(--jp-border-color2, #d1d9e0);
  --ao-line-soft: var(--jp-border-color3, #eef1f4);
  --ao-accent: var(--jp-brand-color1, #1f6feb);
  --ao-mono: var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace);
  font-family: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", sans-serif);
  font-size: 12px;
  color: var(--ao-fg);
}
.agentos-dashboard .ao-header { display: flex; gap: 10px; align-items: center; padding: 2px 2px 6px; }
.agentos-dashboard .ao-header b { font-size: 13px; }
.agentos-dashboard .ao-scroll { max-height: 440px; overflow: auto; }
.agentos-dashboard .ao-table { border-collapse: collapse; width: 100%; line-height: 1.45; }
.agentos-dashboard .ao-table th {
  text-align: left; font-weight: 600; color: var(--ao-fg-muted); white-space: nowrap;
  border-bottom: 1px solid var(--ao-line); padding: 4px 8px; position: sticky; top: 0;
  background: var(--ao-bg); z-index: 1;
}
.agentos-dashboard .ao-table td {
  padding: 3px 8px; border-bottom: 1px solid var(--ao-line-soft); vertical-align: top;
}
.agentos-dashboard .ao-table tr:hover td { background: var(--ao-bg-soft); }
.agentos-dashboard .ao-last-wide td { white-space: nowrap; }
.agentos-dashboard .ao-last-wide td:last-child { width: 100%; white-space: normal; }
.agentos-dashboard .ao-num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.agentos-dashboard .ao-mono { font-family: var(--ao-mono); font-size: 11.5px; }
.agentos-dashboard .ao-muted { color: var(--ao-fg-muted); }
.agentos-dashboard .ao-wrap { white-space: pre-wrap; word-break: break-word; }
.agentos-dashboard .ao-nowrap { white-space: nowrap; }
.agentos-dashboard .ao-empty { padding: 18px 8px; color: var(--ao-fg-muted); font-style: italic; }
.agentos-dashboard .ao-note { padding: 4px 8px; color: var(--ao-fg-muted); }
.agentos-dashboard .ao-warn { color: #9a6700; font-weight: 600; }
.agentos-dashboard .ao-badge {
  display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 11px; line-height: 17px;
  white-space: nowrap; font-weight: 500;
}
.agentos-dashboard .ao-tone-green { background: #dafbe1; color: #116329; }
.agentos-dashboard .ao-tone-grey { background: #eaeef2; color: #424a53; }
.agentos-dashboard .ao-tone-amber { background: #fff1c2; color: #7d4e00; }
.agentos-dashboard .ao-tone-red { background: #ffebe9; color: #a40e26; }
.agentos-dashboard .ao-tone-blue { background: #ddf4ff; color: #0a4e9b; }
.agentos-dashboard .ao-tone-purple { background: #fbefff; color: #6e40c9; }
.agentos-dashboard .ao-tone-teal { background: #d5f5ef; color: #0b6156; }
.agentos-dashboard .ao-tone-orange { background: #fff0e0; color: #9b4205; }
.agentos-dashboard .ao-bar { display: inline-block; width: 60px; height: 6px; border-radius: 3px;
  background: var(--ao-line-soft); vertical-align: middle; margin-left: 6px; overflow: hidden; }
.agentos-dashboard .ao-bar > span { display: block; height: 100%; background: var(--ao-accent); }
.agentos-dashboard .ao-bar.ao-full > span { background: #cf222e; }
.agentos-dashboard .ao-spark { vertical-align: middle; }
.agentos-dashboard .ao-spark-line { fill: none; stroke: var(--ao-accent); stroke-width: 1.4; }
.agentos-dashboard .ao-spark-area { fill: var(--ao-accent); opacity: 0.12; stroke: none; }
.agentos-dashboard details > summary { cursor: pointer; }
.agentos-dashboard pre.ao-pre {
  margin: 4px 0; padding: 6px 8px; background: var(--ao-bg-soft); border-radius: 4px;
  font-family: var(--ao-mono); font-size: 11.5px; white-space: pre-wrap; word-break: break-word;
  max-height: 320px; overflow: auto;
}
.agentos-dashboard .ao-graph { max-width: 100%; height: auto; }
.agentos-dashboard .ao-graph text { font-size: 12px; fill: var(--ao-fg); }
.agentos-dashboard .ao-graph .ao-g-head { fill: var(--ao-fg-muted); font-size: 11px;
  text-transform: uppercase; letter-spacing: 0.04em; }
.agentos-dashboard .ao-g-actor rect { fill: #ddf4ff; stroke: #54aeff; }
.agentos-dashboard .ao-g-actor .ao-g-name { font-weight: 600; fill: #0a3069; }
.agentos-dashboard .ao-g-actor .ao-g-key { font-size: 10.5px; fill: #0a4e9b; }
.agentos-dashboard .ao-g-tool rect { fill: #fff0e0; stroke: #fb8f44; }
.agentos-dashboard .ao-g-tool text { fill: #7a2e04; font-family: var(--ao-mono); font-size: 11.5px; }
.agentos-dashboard .ao-g-edge path { fill: none; stroke: var(--ao-fg-muted); stroke-width: 1.5; opacity: .7; }
.agentos-dashboard .ao-g-edge rect { fill: var(--ao-bg); stroke: var(--ao-line); }
.agentos-dashboard .ao-g-edge text { font-size: 11px; font-weight: 600; }
.agentos-dashboard .ao-g-arrow { fill: var(--ao-fg-muted); }
.agentos-dashboard .ao-item { margin: 0 0 6px; }
.agentos-dashboard .ao-msg { padding: 4px 10px; border-left: 3px solid var(--ao-line); white-space: pre-wrap;
  word-break: break-word; line-height: 1.45; }
.agentos-dashboard .ao-msg-user { border-color: #54aeff; background: #f1f8ff; color: #0a3069; }
.agentos-dashboard .ao-msg-agent { border-color: #4ac26b; }
.agentos-dashboard .ao-msg-thought { border-color: #c297ff; color: var(--ao-fg-muted); font-style: italic; }
.agentos-dashboard .ao-who { font-size: 10.5px; font-weight: 600; text-transform: uppercase;
  letter-spacing: 0.04em; color: var(--ao-fg-muted); display: block; margin-bottom: 1px; }
.agentos-dashboard .ao-tool { border: 1px solid var(--ao-line); border-radius: 6px; padding: 3px 8px; }
.agentos-dashboard .ao-tool > summary { display: flex; gap: 8px; align-items: center; }
.agentos-dashboard .ao-tool-title { font-family: var(--ao-mono); font-size: 11.5px; flex: 1;
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.agentos-dashboard .ao-turn { display: flex; gap: 8px; align-items: center; color: var(--ao-fg-muted);
  font-size: 11px; border-top: 1px dashed var(--ao-line); padding-top: 3px; }
.agentos-dashboard .ao-session-head { padding: 2px 0 6px; display: flex; gap: 8px; flex-wrap: wrap;
  align-items: center; }
.agentos-dashboard .ao-viewer-head { display: flex; gap: 8px; align-items: center; padding: 2px 0 4px; }
.agentos-dashboard .widget-select select { font-family: var(--ao-mono); font-size: 11.5px; }
.agentos-dashboard .ao-md > :first-child { margin-top: 0; }
.agentos-dashboard .ao-md > :last-child { margin-bottom: 0; }
.agentos-dashboard .ao-md { white-space: normal; }
.agentos-dashboard .ao-md p, .agentos-dashboard .ao-md ul, .agentos-dashboard .ao-md ol { margin: 3px 0; }
.agentos-dashboard .ao-md ul, .agentos-dashboard .ao-md ol { padding-left: 20px; }
.agentos-dashboard .ao-md code { font-family: var(--ao-mono); font-size: 11.5px;
  background: var(--ao-bg-soft); padding: 0 3px; border-radius: 3px; }
.agentos-dashboard .ao-md pre { background: var(--ao-bg-soft); padding: 6px 8px; border-radius: 4px;
  overflow: auto; white-space: pre; }
.agentos-dashboard .ao-md pre code { padding: 0; }
.agentos-dashboard .widget-tab > .lm-TabBar .lm-TabBar-tab { background: var(--ao-bg-soft);
  color: var(--ao-fg-muted); border-color: var(--ao-line); }
.agentos-dashboard .widget-tab > .lm-TabBar .lm-TabBar-tab.lm-mod-current { background: var(--ao-bg);
  color: var(--ao-fg); border-top: 2px solid var(--ao-accent); }
.agentos-dashboard .widget-tab > .widget-tab-contents { background: var(--ao-bg);
  border-color: var(--ao-line); }
/* JupyterLab's dark theme: the fixed tones turn dark, so text stays readable on them. */
body[data-jp-theme-light="false"] .agentos-dashboard .ao-tone-green { background: #033a16; color: #7ee2a8; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-tone-grey { background: #32383f; color: #c9d1d9; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-tone-amber { background: #4b2f00; color: #f2cc60; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-tone-red { background: #5d0f12; color: #ffa198; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-tone-blue { background: #0c2d6b; color: #a5d6ff; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-tone-purple { background: #3c1e70; color: #d2a8ff; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-tone-teal { background: #0a3a33; color: #7ee2d4; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-tone-orange { background: #4b2200; color: #ffb77c; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-warn { color: #f2cc60; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-msg-user { background: #0c2d6b; color: #cae8ff; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-g-actor rect { fill: #0c2d6b; stroke: #388bfd; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-g-actor .ao-g-name { fill: #cae8ff; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-g-actor .ao-g-key { fill: #a5d6ff; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-g-tool rect { fill: #4b2200; stroke: #db6d28; }
body[data-jp-theme-light="false"] .agentos-dashboard .ao-g-tool text { fill: #ffdfb6; }
</style>
"""
