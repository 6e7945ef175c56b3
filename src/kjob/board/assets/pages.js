/* kjob board: the campaign view (members by stage, gates, the metric against each grid
 * parameter, the leaderboard) and a run's page (parameters, provenance, notes, lineage,
 * outputs, reports, its curve and log). Every run value goes in as text (dom.js).
 */
window.kjobPages = function (K) {  // what board.js shares: its state (read when drawn) and helpers
  "use strict";

  var D = window.kjobDom, C = window.kjobCharts;
  var el = D.el, isNum = D.isNum, href = D.href, fmt = D.fmt, duration = D.duration, when = D.when, size = D.size,
      PALETTE = D.PALETTE, lineChart = C.lineChart, paramChart = C.paramChart;
  var go = K.go, statusBadge = K.statusBadge, runLink = K.runLink, plottable = K.plottable, needDetail = K.needDetail,
      defaultMetric = K.defaultMetric;

  // -- campaigns ----------------------------------------------------------------------------------

  function stageState(s) {
    if (s.state !== "open" || !s.members.length) return s.state;
    if (s.members.some(function (m) { return /^(queued|running|submitting)/.test(m.status); })) return "running";
    return s.members.every(function (m) { return m.status === "complete"; }) ? "complete" : "open";
  }
  function renderCampaigns(root) {
    var board = K.board(), byId = K.byId(), details = K.details(), state = K.state();
    var list = board.campaigns || [];
    if (!list.length) { root.appendChild(el("p", { "class": "muted", text: "No campaign among these runs (kjob sweep NAME runs one)." })); return; }
    var name = state.campaign && list.some(function (c) { return c.name === state.campaign; }) ? state.campaign : list[0].name;
    var c = list.filter(function (x) { return x.name === name; })[0];
    var tabs = el("div", { "class": "bar" });
    list.forEach(function (x) {
      tabs.appendChild(el("button", { "class": x.name === name ? "on" : null, disabled: x.name === name,
        onclick: function () { go({ campaign: x.name }); }, text: x.name }));
    });
    if (list.length > 1) root.appendChild(tabs);
    var counts = {};
    c.stages.forEach(function (s) { s.members.forEach(function (m) { counts[m.status] = (counts[m.status] || 0) + 1; }); });
    root.appendChild(el("h2", { id: "campaign", "data-name": c.name }, "campaign ", c.name,
      el("span", { "class": "muted", text: c.recipe ? "  recipe " + c.recipe + " on " + c.backend +
        (c.metric ? ", ranked by " + c.metric + " (" + (c.mode === "min" ? "lower" : "higher") + " is better)" : "") : "" })));
    var members = [];
    c.stages.forEach(function (s) { s.members.forEach(function (mb) { if (mb.run && byId[mb.run] && plottable(byId[mb.run])) members.push(mb.run); }); });
    root.appendChild(el("p", { "class": "muted" }, Object.keys(counts).map(function (k) { return counts[k] + " " + k; }).join(", ") +
      (c.strays ? "; " + c.strays + " run(s) of this campaign are no member now (the file or the sources changed)" : ""),
      members.length ? ["  \u00b7  ", el("a", { id: "campaign-curves", href: "#view=curves&runs=" + members.join(","),
                                                  text: "its members' curves \u2192" })] : null));
    if (c.error) root.appendChild(el("p", { "class": "error", text: "campaign file: " + c.error + " (its runs are shown by stage)" }));
    var first = c.leaderboard[0];
    if (first) root.appendChild(el("div", { "class": "best-line", id: "campaign-best" }, "Best member by ", el("b", { text: c.metric }),
      " (" + (c.mode === "min" ? "lowest" : "highest") + "): " + first.label + "  ", byId[first.run] ? runLink(first.run, first.ref) : first.ref,
      " ", el("b", { text: fmt(first.value) }), "  ",
      byId[first.run] && plottable(byId[first.run]) ? el("a", { href: "#view=curves&runs=" + first.run, text: "its curves \u2192" }) : null));
    var cards = el("div", { "class": "cards", id: "stages" });
    c.stages.forEach(function (s) {
      var card = el("div", { "class": "card stage", "data-stage": s.name },
        el("h3", null, "stage " + s.name + " ", statusBadge(stageState(s)),
           s.top ? el("span", { "class": "muted", text: "  (top of " + s.top + ")" }) : null));
      if (s.why) card.appendChild(el("p", { "class": "why" + (/does not hold|cannot be judged/.test(s.why) ? " off" : / holds/.test(s.why) ? " held" : ""),
                                            text: s.why }));
      var t = el("table", null, el("thead", null, el("tr", null, el("th", { text: "member" }), el("th", { text: "status" }),
        el("th", { text: "run" }), c.metric ? el("th", { "class": "num", text: c.metric }) : null)));
      var body = el("tbody");
      s.members.forEach(function (mb) {
        body.appendChild(el("tr", { "data-member": mb.label }, el("td", { title: mb.label, text: mb.point_text || mb.label }),
          el("td", null, statusBadge(mb.status), mb.note ? el("span", { "class": "muted", text: " " + mb.note }) : null),
          el("td", null, mb.run ? (byId[mb.run] ? runLink(mb.run, mb.ref) : mb.ref) : "-"),
          c.metric ? el("td", { "class": "num", text: fmt(mb.value) }) : null));
      });
      if (!s.members.length) body.appendChild(el("tr", null, el("td", { "class": "muted", text: "no member yet" })));
      t.appendChild(body);
      card.appendChild(t);
      cards.appendChild(card);
    });
    root.appendChild(cards);
    if (c.metric && c.dims.length) {
      root.appendChild(el("h3", { text: c.metric + " against each parameter of the grid" }));
      var plots = el("div", { "class": "plots", id: "param-plots" });
      c.dims.forEach(function (dim) {
        var pts = [];
        c.stages.forEach(function (s) { s.members.forEach(function (mb) {
          if (isNum(mb.value) && mb.point && dim in mb.point) pts.push({ x: mb.point[dim], y: mb.value, run: mb.run, stage: s.name, label: mb.label });
        }); });
        plots.appendChild(el("div", { "class": "card" }, paramChart(dim, pts, c.metric, function (run) { go({ view: "run", run: run }); })));
      });
      root.appendChild(plots);
    }
    root.appendChild(el("h3", { text: "leaderboard" + (c.metric ? " by " + c.metric : "") }));
    if (!c.leaderboard.length) { root.appendChild(el("p", { "class": "muted", text: "no complete member has the metric yet" })); return; }
    var lb = el("table", { "class": "runs", id: "leaderboard" }, el("thead", null, el("tr", null, el("th", { text: "rank" }),
      el("th", { text: "member" }), el("th", { "class": "num", text: c.metric }), el("th", { text: "run" }))));
    var lbBody = el("tbody");
    c.leaderboard.forEach(function (e) {
      lbBody.appendChild(el("tr", { "class": e.rank === 1 ? "best" : null }, el("td", { text: e.rank }), el("td", { text: e.label }),
        el("td", { "class": "num", text: fmt(e.value) }), el("td", null, byId[e.run] ? runLink(e.run, e.ref) : e.ref)));
    });
    lb.appendChild(lbBody);
    root.appendChild(el("div", { "class": "table-wrap narrow" }, lb));
  }

  // -- one run ------------------------------------------------------------------------------------

  function kv(rows) {
    var t = el("table", { "class": "kv" });
    rows.forEach(function (r) { if (r) t.appendChild(el("tr", null, el("td", { text: r[0], title: r[0] }), el("td", null, r[1]))); });
    return t;
  }
  function renderRun(root) {
    var board = K.board(), byId = K.byId(), details = K.details(), state = K.state();
    var r = byId[Number(state.run)];
    if (!r) { root.appendChild(el("p", { "class": "error", text: "no run " + state.run + " on this board" })); return; }
    var waiting = needDetail(r.id), d = details[r.id] ? details[r.id].data : null;
    root.appendChild(el("h2", { id: "run-title" }, r.ref + "  ", statusBadge(r.status)));
    if (r.failure) root.appendChild(el("p", { "class": "error", text: r.failure }));
    if (r.files !== "ok") root.appendChild(el("p", { "class": "files", id: "run-files", text: {
      live: "in flight: its curves and log so far, from its sandbox (kjob board --watch keeps them coming)",
      none: "not fetched here yet (kjob fetch " + r.kernel + " --version " + r.version + " --output)",
      missing: "its fetched files were deleted: only what the ledger holds is shown",
      archived: "archived (kjob runs archive): its files are packed; kjob runs restore unpacks them",
      gone: "its kernel is gone and nothing was fetched" }[r.files] || r.files }));
    var grid = el("div", { "class": "run-grid" });
    var params = Object.keys(r.params || {}).sort().map(function (k) {
      return [k, el("span", { "class": "mono", text: fmt(r.params[k]) + (r.overrides && k in r.overrides ? "   (-p)" : "") })];
    });
    grid.appendChild(el("div", { "class": "card" }, el("h3", { text: "parameters" }), params.length ? kv(params) : el("p", { "class": "muted", text: "none" })));
    var metrics = Object.keys(r.metrics).sort().map(function (k) { return [k, el("span", { "class": "mono", text: fmt(r.metrics[k]) })]; });
    grid.appendChild(el("div", { "class": "card" }, el("h3", { text: "metrics" }), metrics.length ? kv(metrics) : el("p", { "class": "muted", text: "none recorded" })));
    var sources = d && d.sources && d.sources.length ? el("div", null, d.sources.map(function (s) {
      return el("div", { "class": "mono", text: s.path + "  " + s.sha256.slice(0, 12) });
    })) : el("span", { "class": "muted", text: d ? "not kept" : "" });
    grid.appendChild(el("div", { "class": "card" }, el("h3", { text: "provenance" }), kv([
      ["backend", r.backend], ["created", when(r.created, true)], ["started", when(r.started, true)], ["finished", when(r.finished, true)],
      ["duration", duration(r.duration)],
      ["notebook", el("span", null, el("span", { "class": "mono", title: r.notebook, text: String(r.notebook).slice(0, 12) }),
        d && d.notebook ? [" ", el("a", { href: href(d.notebook), text: "open" })] : null)],
      d && d.recipe_sha256 ? ["recipe", el("span", { "class": "mono", title: d.recipe_sha256, text: d.recipe_sha256.slice(0, 12) })] : null,
      ["git commit", el("span", { "class": "mono", text: (r.commit || "-") + (r.dirty ? " (uncommitted changes)" : "") })],
      ["sources", sources],
      r.campaign ? ["campaign", r.campaign + (r.stage ? " / " + r.stage : "")] : null,
      r.folder ? ["files", el("a", { href: href(r.folder), text: r.folder })] : null
    ])));
    grid.appendChild(el("div", { "class": "card", id: "run-notes" }, el("h3", { text: "message, note and tags" }), kv([
      ["message", el("span", { "class": "note-text", text: r.message || "-" })],
      ["note", el("span", { "class": "note-text", text: r.note || "-" })],
      ["tags", r.tags.length ? r.tags.map(function (t) { return el("span", { "class": "tag", text: t }); }) : "-"]
    ])));
    grid.appendChild(lineageCard(r, d, waiting));
    var reports = r.reports.length ? r.reports.map(function (p) {
      return el("div", null, p.href ? el("a", { href: href(p.href), text: p.name }) : el("span", { text: p.name + " (no report.html)" }));
    }) : el("span", { "class": "muted", text: "no evaluation (kjob eval-local --run)" });
    var outputs = d ? (d.outputs.length ? d.outputs.map(function (o) {
      return el("div", null, el("a", { href: href(o.href), text: o.name }), el("span", { "class": "muted", text: "  " + size(o.size) }));
    }) : el("span", { "class": "muted", text: "no output files" })) : el("span", { "class": "muted", text: waiting ? "loading\u2026" : "not here" });
    grid.appendChild(el("div", { "class": "card" }, el("h3", { text: "outputs" }), outputs, el("h3", { text: "evaluation reports" }), reports));
    root.appendChild(grid);
    if (d && Object.keys(d.series).length) {
      var names = Object.keys(d.series).sort(), metric = state.metric && d.series[state.metric] ? state.metric : defaultMetric(names);
      var pick = el("select", { onchange: function () { go({ metric: pick.value }, true); } });
      names.forEach(function (n) { pick.appendChild(el("option", { value: n, selected: n === metric, text: n })); });
      root.appendChild(el("h3", null, "curve ", pick));
      var box = el("div", { "class": "chart-box", id: "run-curve" });
      root.appendChild(box);
      var pts = d.series[metric].map(function (p) { return [p[0], p[2]]; }).filter(function (p) { return isNum(p[0]) && isNum(p[1]); });
      lineChart(box, [{ id: r.id, label: r.ref, color: PALETTE[0], points: pts }], { width: 1300, height: 300, x: "step", y: metric });
    }
    root.appendChild(el("h3", { text: "log" + (d && d.log && d.log.cut ? " (its end)" : "") }));
    root.appendChild(el("pre", { "class": "log", id: "run-log", text: d && d.log ? d.log.lines.join("\n") : (waiting ? "loading\u2026" : "no log here") }));
  }
  // What the run was given (its inputs: each a run, where it was mounted, its files' SHA-256 as
  // the push recorded them) and the runs given its outputs; each run a link to its page.
  function lineageCard(r, d, waiting) {
    var byId = K.byId();
    var card = el("div", { "class": "card", id: "run-lineage" }, el("h3", { text: "made from (inputs)" }));
    var inputs = r.inputs || [];
    if (!inputs.length) card.appendChild(el("p", { "class": "muted", text: "nothing: no inputs (kjob push --input)" }));
    inputs.forEach(function (i) {
      var files = d && d.inputs ? (d.inputs.filter(function (x) { return x.label === i.label; })[0] || {}).files : null;
      var item = el("div", { "class": "input", "data-input": i.label },
        i.run ? runLink(i.run, byId[i.run] ? byId[i.run].ref : i.label) : el("span", { text: i.label }),
        i.run ? [" ", statusBadge(byId[i.run].status)] : el("span", { "class": "muted", text: "  (not on this board)" }),
        i.mounts.length ? el("div", { "class": "muted mono", text: i.mounts.map(function (m) { return "/kaggle/input/" + m; }).join("  ") }) : null);
      if (files) {
        item.appendChild(kv(Object.keys(files).map(function (name) {
          return [name, el("span", { "class": "mono sha", title: "SHA-256 " + files[name], "data-sha256": files[name],
                                     text: files[name].slice(0, 16) + "\u2026" })];
        })));
      } else if (i.files) {
        item.appendChild(el("div", { "class": "muted", text: i.files + " file(s)" + (waiting ? ", loading\u2026" : "") }));
      }
      card.appendChild(item);
    });
    card.appendChild(el("h3", { text: "made into (runs given its outputs)" }));
    var made = r.made_into || [];
    if (!made.length) card.appendChild(el("p", { "class": "muted", text: "nothing yet" }));
    made.forEach(function (m) {
      card.appendChild(el("div", { "class": "made", "data-run": m.run },
        m.run ? runLink(m.run, m.ref) : el("span", { text: m.ref }), " ", statusBadge(m.status),
        m.run ? null : el("span", { "class": "muted", text: "  (not on this board)" })));
    });
    return card;
  }

  return { campaigns: renderCampaigns, run: renderRun };
};
