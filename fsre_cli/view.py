"""`fsre view`: triples over their text, as one self-contained HTML page.

The page embeds its data as JSON and renders it in the browser with DOM calls only (text goes
in through `textContent`, never as HTML), so a document that contains markup shows that markup
as text. No network: CSS and JavaScript are inline. Documents are shown a page at a time, so a
view of thousands of documents opens at once; filters (relation, method, minimum score,
entity text) and the counts per relation work on all of them.

Highlighted spans are the records' own offsets: with the documents given, a head is exactly
`text[start:end]` of its document. Without them, each record's evidence sentence stands in
for its document, and head and tail are found in it by their text (the occurrences whose
distance matches the record's offsets); a record whose head or tail the evidence does not
contain is listed without a highlight.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from fsre_cli.documents import Document
from fsre_cli.review import decision_record, pair_in_sentence

# distinct, readable on white; types beyond them cycle
PALETTE = ("#f6c177", "#9ccfd8", "#c4a7e7", "#ebbcba", "#a3d9a5", "#f0a6ca", "#b8c0e0", "#e6d98c", "#8fd3c1",
           "#f5a97f")


@dataclass
class ViewDocument:
    id: str
    text: str
    mentions: dict[tuple[int, int, str], int] = field(default_factory=dict)  # (start, end, type) -> mention id
    triples: list[dict[str, Any]] = field(default_factory=list)
    from_evidence: bool = False
    sentence: int | None = None  # the sentence the evidence is, for a document made of it

    def mention(self, start: int, end: int, etype: str) -> int:
        key = (start, end, etype)
        if key not in self.mentions:
            self.mentions[key] = len(self.mentions)
        return self.mentions[key]


def whole_documents(chunks: Iterable[Document]) -> dict[str, Document]:
    """Documents by id, their chunks (large files arrive in pieces) joined back, given entities
    moved to document offsets."""
    out: dict[str, Document] = {}
    for chunk in chunks:
        entities = [e.shifted(chunk.offset) for e in chunk.entities or []]
        if chunk.id in out and chunk.offset > 0:
            doc = out[chunk.id]
            doc.text += chunk.text
            doc.entities = (doc.entities or []) + entities
        else:
            out[chunk.id] = Document(chunk.id, chunk.text, entities)
    return out


def review_payload(record: dict[str, Any]) -> dict[str, Any] | None:
    """The review line for this triple without its decision and time, which the page adds when a
    button is pressed (`fsre_cli.review`); None when its evidence does not hold its pair."""
    line = decision_record(record, "accept", record["relation"], now="")
    if line is None:
        return None
    del line["decision"], line["time"]
    return line


def build_view(records: Iterable[dict[str, Any]], documents: dict[str, Document] | None = None
               ) -> tuple[list[ViewDocument], list[str]]:
    """The page's documents, in the order their first triple comes, and warnings (records whose
    offsets do not match the given documents' text)."""
    docs: dict[str, ViewDocument] = {}
    warnings: list[str] = []
    for number, record in enumerate(records, 1):
        head, tail = record["head"], record["tail"]
        base = {"relation": record["relation"], "score": record.get("score"), "method": record.get("method", ""),
                "sentence": record["sentence"], "head_text": head["text"], "tail_text": tail["text"],
                "head_type": head["type"], "tail_type": tail["type"], "review": review_payload(record)}
        if documents is not None and record["doc"] in documents:
            doc = docs.get(record["doc"])
            if doc is None:
                source = documents[record["doc"]]
                doc = docs[record["doc"]] = ViewDocument(record["doc"], source.text)
                for e in source.entities or []:
                    doc.mention(e.start, e.end, e.type)
            spans = (head["start"], head["end"], tail["start"], tail["end"])
            if doc.text[spans[0]:spans[1]] != head["text"] or doc.text[spans[2]:spans[3]] != tail["text"]:
                warnings.append(f"triple {number} ({record['doc']}): its offsets do not cover its head and tail "
                                "in the given document; listed without a highlight")
                doc.triples.append({**base, "head": None, "tail": None})
                continue
        else:
            # the evidence sentence is the document: one per (doc, sentence)
            key = f"{record['doc']}\u0000{record['sentence']}"
            doc = docs.get(key)
            if doc is None:
                doc = docs[key] = ViewDocument(record["doc"], record.get("evidence", ""), from_evidence=True,
                                               sentence=record["sentence"])
            spans = pair_in_sentence(doc.text, record)
            if spans is None:
                doc.triples.append({**base, "head": None, "tail": None})
                continue
        doc.triples.append({**base, "head": doc.mention(spans[0], spans[1], head["type"]),
                            "tail": doc.mention(spans[2], spans[3], tail["type"])})
    return list(docs.values()), warnings


def page_data(docs: Sequence[ViewDocument], title: str) -> dict[str, Any]:
    types = sorted({t for d in docs for (_s, _e, t) in d.mentions})
    return {
        "title": title,
        "types": {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(types)},
        "relations": sorted({t["relation"] for d in docs for t in d.triples}),
        "methods": sorted({t["method"] for d in docs for t in d.triples}),
        "docs": [{"id": d.id, "text": d.text, "evidence": d.from_evidence,
                  "sentence": d.sentence,
                  "mentions": [[s, e, t] for (s, e, t), _ in sorted(d.mentions.items(), key=lambda kv: kv[1])],
                  "triples": d.triples} for d in docs],
    }


def _script_json(data: Any) -> str:
    """JSON that cannot end the <script> element it sits in."""
    return (json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_html(docs: Sequence[ViewDocument], title: str = "fsre view", per_page: int = 20,
                review_name: str = "review.jsonl") -> str:
    """The whole page: markup, CSS, the data and the script that renders it. Its review
    buttons download their decisions as `review_name` (NAME.review.jsonl beside the schema)."""
    data = {**page_data(docs, title), "review_name": review_name}
    return (PAGE.replace("__TITLE__", html.escape(title)).replace("__PER_PAGE__", str(int(per_page)))
            .replace("__DATA__", _script_json(data)))


PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 16px;z-index:2}
header h1{font-size:16px;margin:0 0 6px}
.controls{display:flex;flex-wrap:wrap;gap:12px;align-items:center}
.controls label{white-space:nowrap}
#relations{display:flex;flex-wrap:wrap;gap:4px 10px;margin-top:6px}
#relations label{font-size:13px}
main{padding:8px 16px}
.doc{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px;background:#fff;border:1px solid #ddd;
     border-radius:6px;padding:10px 12px;margin:10px 0}
.doc h2{grid-column:1/3;font-size:13px;margin:0;color:#555;font-weight:600}
.text{white-space:pre-wrap;word-wrap:break-word}
.m{border-radius:3px;padding:0 1px}
.sel-head{outline:2px solid #d7263d;background:#ffd6dc!important}
.sel-tail{outline:2px solid #1b5fa8;background:#d3e4ff!important}
ul.triples{list-style:none;margin:0;padding:0}
ul.triples li{padding:3px 6px;border-radius:4px;cursor:pointer;border:1px solid transparent}
ul.triples li:hover,ul.triples li.active{border-color:#999;background:#f2f2f2}
.rel{font-weight:600}.score{color:#666;font-variant-numeric:tabular-nums}.method{color:#888;font-size:12px}
.nohl{color:#a00;font-size:12px}
#pager{margin:8px 0}#pager button{margin-right:6px}
.legend span{display:inline-block;padding:0 6px;border-radius:3px;margin-right:4px;font-size:12px}
button.decide{font-size:12px;padding:0 5px;margin-left:4px;cursor:pointer}
li.accepted{background:#e3f6e3}li.rejected{background:#fbe3e3;text-decoration:line-through}
</style></head>
<body>
<header>
<h1>__TITLE__</h1>
<div class="controls">
<label>method <select id="method"><option value="">all</option></select></label>
<label>min score <input id="minscore" type="number" step="0.01" placeholder="any" style="width:6em"></label>
<label>entity <input id="search" type="search" placeholder="text in head or tail"></label>
<span id="summary"></span>
<button id="download" disabled>download review file (0)</button>
<span class="legend" id="legend"></span>
</div>
<div id="relations"></div>
</header>
<main><div id="pager"></div><div id="docs"></div></main>
<script id="fsre-data" type="application/json">__DATA__</script>
<script>
(function(){
"use strict";
var DATA = JSON.parse(document.getElementById("fsre-data").textContent);
var PER_PAGE = __PER_PAGE__;
var state = {relations: new Set(DATA.relations), method: "", minScore: -Infinity, search: "", page: 0};
var decisions = new Map();  // triple -> "accept" | "reject", in the order made
function decide(t, li, decision){
  if(decisions.get(t)===decision){decisions.delete(t);} else {decisions.delete(t); decisions.set(t, decision);}
  li.classList.toggle("accepted", decisions.get(t)==="accept"); li.classList.toggle("rejected", decisions.get(t)==="reject");
  var b=document.getElementById("download"); b.textContent="download review file ("+decisions.size+")"; b.disabled=decisions.size===0;
}
document.getElementById("download").addEventListener("click", function(){
  var now=new Date().toISOString().replace(/\.\d+Z$/,"Z"), lines=[];
  decisions.forEach(function(decision, t){
    var line=Object.assign({}, t.review); line.decision=decision; line.relation=t.relation; line.time=now;
    lines.push(JSON.stringify(line));
  });
  var a=document.createElement("a");
  a.href=URL.createObjectURL(new Blob([lines.join("\n")+"\n"], {type:"application/x-ndjson"}));
  a.download=DATA.review_name; document.body.appendChild(a); a.click(); a.remove();
});
function el(tag, cls, text){var e=document.createElement(tag); if(cls) e.className=cls; if(text!==undefined) e.textContent=text; return e;}
function visible(t){
  if(!state.relations.has(t.relation)) return false;
  if(state.method && t.method!==state.method) return false;
  if(state.minScore>-Infinity && !(t.score>=state.minScore)) return false;
  if(state.search){var q=state.search; if(t.head_text.toLowerCase().indexOf(q)<0 && t.tail_text.toLowerCase().indexOf(q)<0) return false;}
  return true;
}
function renderText(doc, box){
  // cut the text at every mention boundary; each piece carries the mentions covering it
  var cuts=new Set([0, doc.text.length]);
  doc.mentions.forEach(function(m){cuts.add(m[0]); cuts.add(m[1]);});
  var points=Array.from(cuts).sort(function(a,b){return a-b;});
  for(var i=0;i+1<points.length;i++){
    var a=points[i], b=points[i+1], ids=[], type=null;
    doc.mentions.forEach(function(m,k){ if(m[0]<=a && b<=m[1]){ids.push(k); type=m[2];} });
    var piece=doc.text.slice(a,b);
    if(!ids.length){box.appendChild(document.createTextNode(piece)); continue;}
    var s=el("span","m",piece); s.dataset.mentions=" "+ids.join(" ")+" "; s.style.background=DATA.types[type]||"#eee";
    s.title=type; box.appendChild(s);
  }
}
function select(box, t, li){
  box.querySelectorAll(".sel-head,.sel-tail").forEach(function(s){s.classList.remove("sel-head","sel-tail");});
  li.parentNode.querySelectorAll("li.active").forEach(function(x){x.classList.remove("active");});
  li.classList.add("active");
  if(t.head===null) return;
  box.querySelectorAll("span.m").forEach(function(s){
    if(s.dataset.mentions.indexOf(" "+t.head+" ")>=0) s.classList.add("sel-head");
    if(s.dataset.mentions.indexOf(" "+t.tail+" ")>=0) s.classList.add("sel-tail");
  });
}
function renderDoc(doc, triples){
  var card=el("section","doc"); card.dataset.doc=doc.id;
  card.appendChild(el("h2",null, doc.id + (doc.evidence ? "  (sentence "+doc.sentence+", from the evidence)" : "")));
  var box=el("div","text"); renderText(doc, box); card.appendChild(box);
  var list=el("ul","triples");
  triples.forEach(function(t){
    var li=el("li"); li.dataset.relation=t.relation;
    li.appendChild(el("span","rel",t.relation)); li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span","score",t.score===null?"\u2014":t.score.toFixed(3))); li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span","pair",t.head_text+" \u2192 "+t.tail_text)); li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span","method",(t.method?t.method+" \u00b7 ":"")+"sentence "+t.sentence));
    if(t.head===null) li.appendChild(el("span","nohl"," (not found in the text)"));
    if(t.review){
      [["accept","\u2713","accept: the pair holds this relation"],["reject","\u2717","reject: it does not"]].forEach(function(b){
        var btn=el("button","decide "+b[0],b[1]); btn.title=b[2];
        btn.addEventListener("click",function(ev){ev.stopPropagation(); decide(t, li, b[0]);});
        li.appendChild(btn);
      });
      li.classList.toggle("accepted", decisions.get(t)==="accept"); li.classList.toggle("rejected", decisions.get(t)==="reject");
    }
    li.addEventListener("mouseenter",function(){select(box,t,li);});
    li.addEventListener("click",function(){select(box,t,li);});
    list.appendChild(li);
  });
  card.appendChild(list);
  return card;
}
function render(){
  var shown=[], counts={}, total=0;
  DATA.relations.forEach(function(r){counts[r]=0;});
  DATA.docs.forEach(function(d){
    var ts=d.triples.filter(visible);
    ts.forEach(function(t){counts[t.relation]++;});
    total+=ts.length;
    if(ts.length) shown.push([d,ts]);
  });
  var pages=Math.max(1,Math.ceil(shown.length/PER_PAGE));
  if(state.page>=pages) state.page=pages-1;
  var out=document.getElementById("docs"); out.textContent="";
  shown.slice(state.page*PER_PAGE,(state.page+1)*PER_PAGE).forEach(function(p){out.appendChild(renderDoc(p[0],p[1]));});
  document.getElementById("summary").textContent=total+" triples in "+shown.length+" documents";
  DATA.relations.forEach(function(r){document.getElementById("count-"+r).textContent=" ("+counts[r]+")";});
  var pager=document.getElementById("pager"); pager.textContent="";
  var prev=el("button",null,"\u2190 previous"); prev.disabled=state.page===0; prev.onclick=function(){state.page--; render();};
  var next=el("button",null,"next \u2192"); next.disabled=state.page>=pages-1; next.onclick=function(){state.page++; render();};
  pager.appendChild(prev); pager.appendChild(next); pager.appendChild(el("span",null,"page "+(state.page+1)+" of "+pages));
}
var rels=document.getElementById("relations");
DATA.relations.forEach(function(r){
  var label=el("label"), box=el("input"); box.type="checkbox"; box.checked=true; box.value=r; box.className="relation-filter";
  box.onchange=function(){ if(box.checked) state.relations.add(r); else state.relations.delete(r); state.page=0; render(); };
  label.appendChild(box); label.appendChild(document.createTextNode(" "+r)); var c=el("span"); c.id="count-"+r; label.appendChild(c);
  rels.appendChild(label);
});
var method=document.getElementById("method");
DATA.methods.forEach(function(m){var o=el("option",null,m); o.value=m; method.appendChild(o);});
method.onchange=function(){state.method=method.value; state.page=0; render();};
var minscore=document.getElementById("minscore");
minscore.oninput=function(){var v=parseFloat(minscore.value); state.minScore=isNaN(v)?-Infinity:v; state.page=0; render();};
var search=document.getElementById("search");
search.oninput=function(){state.search=search.value.trim().toLowerCase(); state.page=0; render();};
var legend=document.getElementById("legend");
Object.keys(DATA.types).forEach(function(t){var s=el("span",null,t); s.style.background=DATA.types[t]; legend.appendChild(s);});
render();
})();
</script>
</body></html>
"""
