/* kjob board: the small DOM helpers board.js and charts.js share. Every value goes into the
 * page as text (textContent, createTextNode) or as an attribute set one by one, never as markup.
 */
window.kjobDom = (function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  // Tableau 10, its pale yellow last of the eight plotted by default (it reads poorly on white)
  var PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#ff9da7", "#9c755f",
                 "#edc948", "#8c8c8c", "#1f77b4", "#d62728"];

  function el(tag, attrs) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = String(v);
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    });
  }
  function add(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(node, c); }); return; }
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  // A relative link to a file of the workspace, each part of its path encoded (never a scheme).
  function href(path) {
    return path.split("/").map(function (p) { return p === ".." || p === "." ? p : encodeURIComponent(p); }).join("/");
  }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "number") {
      if (!isFinite(v)) return String(v);
      if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
      var a = Math.abs(v);
      if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, "e");
      return String(parseFloat(v.toPrecision(4)));
    }
    if (Array.isArray(v) || typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function duration(s) {
    if (!isNum(s)) return "";
    s = Math.round(s);
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + ("0" + (s % 60)).slice(-2) + "s";
    return Math.floor(s / 3600) + "h " + ("0" + Math.floor((s % 3600) / 60)).slice(-2) + "m";
  }
  function when(t, full) {
    if (!isNum(t)) return "";
    var d = new Date(t * 1000), year = d.getFullYear() === new Date().getFullYear() && !full ? "" : d.getFullYear() + "-";
    function two(n) { return ("0" + n).slice(-2); }
    return year + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " + two(d.getHours()) + ":" + two(d.getMinutes());
  }
  function size(n) {
    return n >= 1e9 ? (n / 1e9).toFixed(1) + " GB" : n >= 1e6 ? (n / 1e6).toFixed(1) + " MB" : n >= 1e3 ? (n / 1e3).toFixed(1) + " kB" : n + " B";
  }

  return { PALETTE: PALETTE, el: el, svg: svg, add: add, clear: clear, isNum: isNum, href: href, fmt: fmt,
           duration: duration, when: when, size: size };
})();
