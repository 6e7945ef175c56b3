"""The report's style sheet and its two short inline scripts (nothing is loaded from the
network). The page is laid out for 1,400 px: an utterance's three spectrograms and
players sit side by side under its row of scores, with no horizontal scrolling."""

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:12px 16px;max-width:1400px;color:#222}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .4em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f2f2f2;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.up{color:#176b24}.down{color:#a11}.muted{color:#666}.meta{margin:.2em 0;line-height:1.5}
.warnings{background:#fff4e5;border:1px solid #f0c36d;padding:6px 10px;margin:.6em 0}.warnings li{margin:.2em 0}
.charts{display:grid;grid-template-columns:repeat(2,max-content);gap:8px 28px}
.chart-pair h3{font-size:1em;margin:.2em 0}.chart-pair svg{margin-right:8px}
svg .axis{font-size:11px;fill:#444}svg .tick{font-size:10px;fill:#444}
.breakdown{display:flex;gap:28px;flex-wrap:wrap}
.snr-charts{display:flex;gap:16px;flex-wrap:wrap}.snr-charts h3{font-size:1em;margin:.2em 0}
html[data-view=utterances] .overview{display:none}.controls a{margin-right:1em}.sort a{text-decoration:none;color:#345;padding:0 2px}
#utterances{width:100%;table-layout:fixed}#utterances td{overflow-wrap:anywhere}
#utterances tbody{border-top:3px solid #888}
#utterances tr.scores td{background:#fafafa}.name{font-weight:600}.notes{font-size:88%;color:#a11}
tr.players>td{padding:6px 4px 8px}.media{display:flex;gap:10px;align-items:flex-start}
figure.spec{margin:0;width:400px}figure.spec figcaption{font-weight:600;font-size:92%;margin-left:40px}
.plot{position:relative;margin-left:40px;width:356px;height:128px;border:1px solid #999}
.plot img{display:block;width:100%;height:100%}
.yt{position:absolute;left:-40px;width:34px;text-align:right;font-size:10px;transform:translateY(50%);color:#444}
.xt{position:absolute;top:130px;font-size:10px;transform:translateX(-50%);color:#444}
.xlabel{margin:14px 0 0 40px;font-size:10px;color:#444;text-align:right;width:356px}
figure.spec audio{width:356px;height:30px;margin:2px 0 0 40px;display:block}
.colour{display:flex;gap:4px;margin-top:18px;font-size:10px;color:#444}.colour img{width:12px;height:128px;border:1px solid #999}
.colour .labels{display:flex;flex-direction:column;justify-content:space-between;height:128px}
"""

# Sorting and filtering by the URL's fragment (#sort=pesq_wb_delta: worst first;
# #sort=-si_sdr_enhanced; &only=worse: regressions only; &view=utterances: the table
# alone, without the overview above it), so every view is a link.
SORT_SCRIPT = """
(function(){var t=document.getElementById("utterances");if(!t)return;var all=[].slice.call(t.tBodies);
function v(b,k){var x=parseFloat(b.getAttribute("data-"+k));return isNaN(x)?null:x}
function apply(){var q=new URLSearchParams(location.hash.slice(1)),s=q.get("sort")||"n",d=s[0]=="-"?-1:1,
k=s.replace(/^-/,""),w=q.get("only")=="worse";all.slice().sort(function(a,b){var x=v(a,k),y=v(b,k);
return x===y?v(a,"n")-v(b,"n"):x===null?1:y===null?-1:d*(x-y)}).forEach(function(b){
b.hidden=w&&b.getAttribute("data-change")!="worse";t.appendChild(b)});t.setAttribute("data-order",s+(w?" worse":""));
document.documentElement.setAttribute("data-view",q.get("view")||"all")}
addEventListener("hashchange",apply);apply()})();
"""

# Marks every player ready or failed and counts them, and records the page's width and
# where the first utterance's figures are, so that a reader (or a headless test) can see
# at once whether all the audio loads and the layout fits.
STATUS_SCRIPT = """
(function(){var players=[].slice.call(document.querySelectorAll("audio")),s=document.getElementById("audio-status");
function update(){var ready=0,failed=0;players.forEach(function(a){if(a.error){a.dataset.state="error";failed++}
else if(a.readyState>=1&&a.duration>0){a.dataset.state="ready";a.dataset.duration=a.duration.toFixed(3);ready++}});
var images=document.querySelectorAll("img"),shown=0;images.forEach(function(i){if(i.complete&&i.naturalWidth>0)shown++});
var b=document.querySelector("#utterances tbody:not([hidden])"),f=b?[].slice.call(b.querySelectorAll("figure")):[];
s.dataset.figures=JSON.stringify(f.map(function(e){var r=e.getBoundingClientRect();return[Math.round(r.left),
Math.round(r.top+scrollY),Math.round(r.right),Math.round(r.bottom+scrollY)]}));s.dataset.scrollWidth=document.documentElement.scrollWidth;
s.dataset.viewportWidth=innerWidth;s.dataset.images=shown;s.dataset.imagesTotal=images.length;s.dataset.ready=ready;
s.dataset.failed=failed;s.dataset.total=players.length;s.textContent=ready+" of "+players.length+" audio players ready"+(failed?", "+failed+" failed":"");
if(ready+failed<players.length){setTimeout(update,200)}else{s.dataset.done="1"}}
players.forEach(function(a){a.addEventListener("loadedmetadata",update);a.addEventListener("error",update)});update()})();
"""
