/* kjob board: the runs' own columns, `--where` conditions and sorting, as `kjob runs` reads
 * them (kjob.runs.query): the same NAME OP VALUE, the same names (a column, a metric, a
 * metric's series best, a parameter), missing values last. Pure over the board's rows.
 */
window.kjobQuery = function (K) {  // K.board(): data.js's content; K.mode(name): "min" or "max"
  "use strict";

  var isNum = window.kjobDom.isNum, mode = K.mode;
  // The run's own columns `kjob runs --where` knows (kjob.runquery.RUN_COLUMNS).
  var COLUMNS = {
    kernel: function (r) { return r.kernel; }, version: function (r) { return r.version; },
    backend: function (r) { return r.backend; }, status: function (r) { return r.status; },
    duration: function (r) { return r.duration; }, created: function (r) { return r.created; },
    started: function (r) { return r.started; }, finished: function (r) { return r.finished; },
    parameters: function (r) {
      var keys = Object.keys(r.overrides || {}).sort();
      return keys.length ? keys.map(function (k) { return k + "=" + r.overrides[k]; }).join(" ") : null;
    },
    notebook: function (r) { return r.notebook; }, commit: function (r) { return r.commit; },
    message: function (r) { return r.message; }, note: function (r) { return r.note; },
    tags: function (r) { return r.tags; }, archived: function (r) { return r.files === "archived"; },
    campaign: function (r) { return r.campaign; }, stage: function (r) { return r.stage; },
    inputs: function (r) { return r.inputs ? r.inputs.map(function (i) { return i.label; }).join(", ") : null; },
    input: function (r) { return r.input_names || null; }  // every name of each input: input=train:v3
  };
  var TIMES = { created: 1, started: 1, finished: 1 };
  var CONDITION = /^\s*([^<>=!\s]+)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$/;  // kjob.runquery._CONDITION
  var BOOLS = { "true": true, "yes": true, "1": true, "false": false, "no": false, "0": false };
  var COMPARE = {
    "<": function (a, b) { return a < b; }, "<=": function (a, b) { return a <= b; },
    ">": function (a, b) { return a > b; }, ">=": function (a, b) { return a >= b; },
    "=": function (a, b) { return a === b; }, "==": function (a, b) { return a === b; },
    "!=": function (a, b) { return a !== b; }
  };

  // -- --where, as kjob runs reads it (kjob.runquery) -----------------------------------------

  function hasMetric(name) { return K.board().runs.some(function (r) { return r.metrics[name] !== undefined; }); }
  function hasParam(name) { return K.board().runs.some(function (r) { return r.params && name in r.params; }); }
  function resolve(name) {
    var dot = name.indexOf("."), head = dot < 0 ? name : name.slice(0, dot), rest = dot < 0 ? "" : name.slice(dot + 1);
    if (COLUMNS[name]) return { kind: "column", name: name };
    if (hasMetric(name)) return { kind: "metric", name: name };
    if (head === "metric" && hasMetric(rest)) return { kind: "metric", name: rest };
    if (head === "param" && hasParam(rest)) return { kind: "param", name: rest };
    if (hasMetric(name + ".best")) return { kind: "metric", name: name + ".best" };
    if (hasParam(name)) return { kind: "param", name: name };
    throw new Error("no run has a metric '" + name + "' (nor a parameter or column of that name)");
  }
  function value(field, run) {
    if (field.kind === "column") return COLUMNS[field.name](run);
    var v = (field.kind === "metric" ? run.metrics : run.params || {})[field.name];
    return v === undefined ? null : v;
  }
  function parseWhere(text) {
    return text.split(";").map(function (s) { return s.trim(); }).filter(Boolean).map(function (s) {
      var m = CONDITION.exec(s);
      if (!m || !m[3]) throw new Error("'" + s + "': expected NAME OP VALUE, OP one of < <= > >= = != (e.g. 'lr<0.01')");
      var literal = m[3];
      if (literal.length >= 2 && literal[0] === literal[literal.length - 1] && (literal[0] === "'" || literal[0] === '"'))
        literal = literal.slice(1, -1);
      return { text: s, name: m[1], op: m[2], literal: literal, field: resolve(m[1]) };
    });
  }
  function holds(c, run) {
    var v = value(c.field, run), compare = COMPARE[c.op];
    if (v === null || v === undefined) return false;
    if (Array.isArray(v)) {
      if (c.op !== "=" && c.op !== "==" && c.op !== "!=") throw new Error("'" + c.text + "': " + c.name + " is a list; use = or !=");
      return (v.indexOf(c.literal) >= 0) === (c.op !== "!=");
    }
    if (typeof v === "boolean") {
      var b = BOOLS[c.literal.toLowerCase()];
      if (b === undefined || (c.op !== "=" && c.op !== "==" && c.op !== "!="))
        throw new Error("'" + c.text + "': " + c.name + " is true or false; use = or != with one of those");
      return compare(v, b);
    }
    if (isNum(v)) {
      var n = NaN;
      if (c.field.kind === "column" && TIMES[c.field.name]) n = Date.parse(c.literal) / 1000;
      if (!isFinite(n)) n = Number(c.literal);
      if (c.literal.trim() === "" || !isFinite(n)) throw new Error("'" + c.text + "': " + c.name + " is a number, '" + c.literal + "' is not");
      return compare(v, n);
    }
    return compare(String(v), c.literal);
  }

  // -- sorting (kjob.runquery.sort_runs: missing values last) --------------------------------

  function sortKey(field, run) {
    var v = value(field, run);
    if (field.kind === "column" && field.name === "version") return [0, v === null ? 0 : v];
    if (typeof v === "boolean") return [0, v ? 1 : 0];
    if (isNum(v)) return [0, v];
    if (Array.isArray(v)) return v.length ? [1, v.join(",")] : null;
    return v === null || v === undefined ? null : [1, String(v)];
  }
  function compareKeys(a, b) {
    if (a[0] !== b[0]) return a[0] - b[0];
    return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
  }
  function sortSpec(spec) {
    var sign = spec[0] === "-" || spec[0] === "+" ? spec[0] : "", name = sign ? spec.slice(1) : spec;
    var field = resolve(name);
    var descending = sign === "-" || (!sign && field.kind === "metric" && mode(field.name) === "max");
    return { field: field, descending: descending, sign: sign, name: name };
  }
  function sortRuns(runs, spec) {
    var s = sortSpec(spec), keyed = runs.map(function (r, i) { return { r: r, k: sortKey(s.field, r), i: i }; });
    keyed.sort(function (a, b) {
      if (a.k === null || b.k === null) return a.k === null ? (b.k === null ? a.i - b.i : 1) : -1;
      var c = compareKeys(a.k, b.k);
      return (s.descending ? -c : c) || a.i - b.i;
    });
    return keyed.map(function (x) { return x.r; });
  }

  return { COLUMNS: COLUMNS, parseWhere: parseWhere, holds: holds, sortSpec: sortSpec, sortRuns: sortRuns };
};
