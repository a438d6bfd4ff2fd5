// durable_gen console: keeps the pages current and sends the actions.
// Every value from the server is set as text (textContent, never innerHTML); every
// POST carries the X-Durable-Gen-Console header the server requires.
"use strict";
(function () {
  const POLL_MS = 1000;
  const HEADER = "X-Durable-Gen-Console";

  // ------------------------------------------------------------------ helpers

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else node.setAttribute(key, String(value));
    }
    for (const child of children || []) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  // replaceChildren without the nulls (which it would show as the text "null")
  function fill(node, ...children) {
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
  }

  function fmtTime(ms) {
    return ms === null || ms === undefined ? "" : new Date(ms).toISOString().replace("T", " ");
  }

  function fmtDuration(ms) {
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 120) return `${s.toFixed(1)} s`;
    if (s < 7200) return `${(s / 60).toFixed(1)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }

  function statusBadge(status) {
    return el("span", { class: `status s-${status}`, text: status });
  }

  function executionUrl(id) {
    return "/console/executions/" + encodeURIComponent(id);
  }

  function apiUrl(id) {
    return "/console/api/executions/" + encodeURIComponent(id);
  }

  class Refused extends Error {}

  async function api(method, path, body) {
    const init = { method, headers: { [HEADER]: "1" }, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let doc = null;
    try {
      doc = await response.json();
    } catch (e) {
      doc = null;
    }
    if (response.status === 401 && document.body.dataset.page !== "login") {
      window.location.reload(); // the session ended: the server asks for the token again
    }
    if (!response.ok) throw new Refused((doc && doc.message) || `HTTP ${response.status}`);
    return doc;
  }

  const live = document.getElementById("live");

  function showLive(text, kind) {
    if (!live) return;
    live.className = "live" + (kind ? " " + kind : "");
    live.textContent = text;
  }

  // Calls fn about every POLL_MS while the tab is visible; start() and stop() switch it.
  function poller(fn) {
    let timer = null;
    let running = false;
    let busy = false;
    async function tick() {
      timer = null;
      if (!running || document.hidden || busy) return;
      busy = true;
      try {
        await fn();
        showLive(`live · updated ${new Date().toLocaleTimeString()}`, "on");
      } catch (e) {
        showLive(`not updated: ${e.message}`, "problem");
      } finally {
        busy = false;
      }
      if (running && !document.hidden && timer === null) timer = setTimeout(tick, POLL_MS);
    }
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        if (running) showLive("paused while the tab is hidden");
      } else if (running && timer === null) {
        tick();
      }
    });
    return {
      start() {
        running = true;
        if (timer !== null) clearTimeout(timer);
        timer = null;
        tick();
      },
      stop(text) {
        running = false;
        if (timer !== null) clearTimeout(timer);
        timer = null;
        showLive(text || "");
      },
      now() {
        if (timer !== null) clearTimeout(timer);
        timer = null;
        return tick();
      },
    };
  }

  // ------------------------------------------------------------------ list page

  function listPage() {
    const form = document.getElementById("filters");
    for (const select of form.querySelectorAll("select")) {
      select.addEventListener("change", () => form.requestSubmit());
    }
    const tbody = document.querySelector("#executions tbody");
    const pager = document.getElementById("pager");
    const params = new URLSearchParams(window.location.search);
    let last = null;

    function listUrl(changes) {
      const next = new URLSearchParams(params);
      for (const key of ["after", "before"]) next.delete(key);
      for (const [key, value] of Object.entries(changes)) {
        if (value === null) next.delete(key);
        else next.set(key, value);
      }
      const q = next.toString();
      return "/console/" + (q ? "?" + q : "");
    }

    function render(doc) {
      const rows = doc.executions.map((r) => {
        const ended = r.ended === null ? "" : fmtTime(r.ended);
        const took = r.ended === null ? "" : fmtDuration(r.ended - r.started);
        const version = r.version
          ? el("a", { class: "version", href: "/console/?" + new URLSearchParams({ version: r.version }).toString(), title: "only this version", text: r.version })
          : "-";
        return el("tr", { "data-id": r.id }, [
          el("td", {}, [statusBadge(r.status)]),
          el("td", { class: "name" }, [el("a", { href: executionUrl(r.id), text: r.id })]),
          el("td", { text: r.function || r.target || "-" }),
          el("td", {}, [version]),
          el("td", { class: "time", text: fmtTime(r.started) }),
          el("td", { class: "time", text: ended }),
          el("td", { class: "num", text: took }),
        ]);
      });
      if (!rows.length) {
        rows.push(el("tr", { class: "empty" }, [el("td", { colspan: 7, text: "No executions match." })]));
      }
      fill(tbody, ...rows);
      const links = [];
      if (params.get("after") || params.get("before")) {
        links.push(el("a", { id: "first", href: listUrl({}), text: "First page" }));
      }
      if (doc.previous) links.push(el("a", { id: "previous", href: listUrl({ before: doc.previous }), text: "Previous page" }));
      if (doc.next) links.push(el("a", { id: "next", href: listUrl({ after: doc.next }), text: "Next page" }));
      fill(pager, ...links.flatMap((a, i) => (i ? [" ", a] : [a])));
    }

    const poll = poller(async () => {
      const doc = await api("GET", "/console/api/executions?" + params.toString());
      const text = JSON.stringify(doc);
      if (text !== last) {
        last = text;
        render(doc);
      }
    });
    poll.start();
  }

  // ------------------------------------------------------------------ execution page

  function payloadBlock(label, shown, cls) {
    if (!shown) return null;
    const note = shown.truncated
      ? el("p", { class: "note", text: `showing ${shown.text.length.toLocaleString()} of ${shown.chars.toLocaleString()} characters` })
      : null;
    return el("div", { class: `payload ${cls}` }, [el("h3", { text: label }), el("pre", { text: shown.text }), note]);
  }

  function errorBlock(err) {
    if (!err) return null;
    return el("div", { class: "payload error" }, [
      el("h3", { text: "Error" }),
      el("p", { class: "err" }, [el("b", { text: err.type }), ": " + err.message.text]),
      err.stack.length ? el("pre", { class: "stack", text: err.stack.join("\n") }) : null,
      err.data ? payloadBlock("Error data", err.data, "data") : null,
    ]);
  }

  function executionPage() {
    const id = document.body.dataset.execution;
    const sections = {
      summary: document.getElementById("summary"),
      actions: document.getElementById("actions"),
      callbacks: document.getElementById("callbacks"),
      operations: document.getElementById("operations"),
      history: document.getElementById("history"),
    };
    const seen = {};
    const opened = new Map(); // which <details> of the tree are open, by key
    const drafts = new Map(); // callback payloads being written, by callback id
    let extraEvents = []; // history pages loaded with "more"
    let lastDoc = null;

    function changed(key, value) {
      const text = JSON.stringify(value);
      if (seen[key] === text) return false;
      seen[key] = text;
      return true;
    }

    function renderSummary(ex) {
      const facts = [
        ["Function", ex.function || ex.target || "-"],
        ["Version", ex.version || "-"],
        ["Started", fmtTime(ex.started)],
        ["Ended", ex.ended === null ? "-" : fmtTime(ex.ended)],
        ["Duration", ex.ended === null ? `${fmtDuration(Date.now() - ex.started)} so far` : fmtDuration(ex.ended - ex.started)],
      ];
      if (ex.wake_at) facts.push(["Wakes", fmtTime(ex.wake_at)]);
      const dl = el("dl", {}, facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
      fill(
        sections.summary,
        el("h1", {}, [el("span", { id: "exec-name", text: ex.id }), " ", el("span", { id: "exec-status" }, [statusBadge(ex.status)])]),
        dl,
        payloadBlock("Input", ex.input, "input"),
        payloadBlock("Result", ex.result, "result"),
        errorBlock(ex.error),
      );
    }

    function actionButton(label, path, confirmText, cls, after) {
      const message = el("span", { class: "note" });
      const run = async () => {
        message.className = "note";
        message.textContent = "…";
        try {
          const doc = await api("POST", apiUrl(id) + path);
          message.className = "ok";
          message.textContent = doc.message;
          if (after) after();
          else poll.start();
        } catch (e) {
          message.className = "problem";
          message.textContent = e.message;
        }
      };
      const wrap = el("span", { class: "action" });
      const button = el("button", { type: "button", class: cls, "data-action": path.slice(1), text: label });
      button.addEventListener("click", () => {
        if (!confirmText) return run();
        // an inline confirmation (never window.confirm)
        const yes = el("button", { type: "button", class: "danger", "data-confirm": path.slice(1), text: `Yes, ${label.toLowerCase()}` });
        const no = el("button", { type: "button", text: "Cancel" });
        const box = el("span", { class: "confirm" }, [confirmText, yes, no]);
        yes.addEventListener("click", () => {
          box.replaceWith(button);
          run();
        });
        no.addEventListener("click", () => box.replaceWith(button));
        button.replaceWith(box);
      });
      wrap.append(button, " ", message);
      return wrap;
    }

    function renderActions(ex) {
      const buttons = [];
      if (ex.status === "RUNNING") buttons.push(actionButton("Pause", "/pause", null, ""));
      if (ex.status === "PAUSING" || ex.status === "PAUSED") buttons.push(actionButton("Resume", "/resume", null, "primary"));
      if (ex.live) buttons.push(actionButton("Stop", "/stop", "Stop this execution?", "danger"));
      if (["FAILED", "STOPPED", "TIMED_OUT"].includes(ex.status)) buttons.push(actionButton("Redrive", "/redrive", null, "primary"));
      if (!ex.live) {
        buttons.push(
          actionButton("Delete", "/delete", "Delete this execution with its history?", "danger", () => {
            window.location.assign("/console/");
          }),
        );
      }
      fill(sections.actions, ...buttons);
    }

    function renderCallbacks(callbacks) {
      for (const box of sections.callbacks.querySelectorAll("textarea[data-callback-id]")) {
        drafts.set(box.dataset.callbackId, box.value);
      }
      if (!callbacks.length) {
        fill(sections.callbacks);
        return;
      }
      const blocks = callbacks.map((cb) => {
        const facts = [`Started ${fmtTime(cb.start)}`];
        if (cb.deadline) facts.push(`times out at ${fmtTime(cb.deadline)} (${cb.timeout_s} s)`);
        if (cb.heartbeat_timeout_s) facts.push(`heartbeat every ${cb.heartbeat_timeout_s} s`);
        const area = el("textarea", { "data-callback-id": cb.callback_id, spellcheck: "false", "aria-label": "payload (JSON)" });
        area.value = drafts.has(cb.callback_id) ? drafts.get(cb.callback_id) : '{"approved": true}';
        const problem = el("span", { class: "problem", role: "alert" });
        const message = el("span", { class: "note" });
        const succeed = el("button", { type: "button", class: "primary", "data-callback-action": "succeed", text: "Succeed" });
        const fail = el("button", { type: "button", class: "danger", "data-callback-action": "fail", text: "Fail" });
        const beat = el("button", { type: "button", "data-callback-action": "heartbeat", text: "Heartbeat" });
        const format = el("button", {
          type: "button",
          class: "format",
          title: "Re-write the JSON with two-space indents (through the browser's JSON: integers beyond 2^53 lose precision)",
          text: "Format JSON",
        });
        const check = () => {
          let ok = true;
          try {
            JSON.parse(area.value.trim() || "null");
            problem.textContent = "";
          } catch (e) {
            ok = false;
            problem.textContent = `not valid JSON: ${e.message}`;
          }
          area.classList.toggle("invalid", !ok);
          succeed.disabled = fail.disabled = !ok;
          return ok;
        };
        area.addEventListener("input", () => {
          drafts.set(cb.callback_id, area.value);
          check();
        });
        format.addEventListener("click", () => {
          if (!check()) return;
          area.value = JSON.stringify(JSON.parse(area.value.trim() || "null"), null, 2);
          drafts.set(cb.callback_id, area.value);
          check();
        });
        const send = async (action) => {
          if (action !== "heartbeat" && !check()) return;
          message.className = "note";
          message.textContent = "…";
          try {
            const body = { execution: id };
            if (action !== "heartbeat") body.payload = area.value;
            const doc = await api("POST", `/console/api/callbacks/${encodeURIComponent(cb.callback_id)}/${action}`, body);
            message.className = "ok";
            message.textContent = doc.message;
            if (action !== "heartbeat") drafts.delete(cb.callback_id);
            poll.start();
          } catch (e) {
            message.className = "problem";
            message.textContent = e.message;
          }
        };
        succeed.addEventListener("click", () => send("succeed"));
        fail.addEventListener("click", () => send("fail"));
        beat.addEventListener("click", () => send("heartbeat"));
        const block = el("div", { class: "callback", "data-callback-id": cb.callback_id }, [
          el("h3", { text: `${cb.kind}${cb.name ? " " + cb.name : ""}` }),
          el("p", {}, ["Callback id ", el("code", { class: "callback-id", text: cb.callback_id })]),
          el("p", { class: "note", text: facts.join(" · ") }),
          el("label", { class: "note", text: "Payload (JSON)" }),
          area,
          el("p", { class: "note semantics" }, [
            "Succeed sends this text exactly as written (not re-encoded; empty sends null): the workflow's ",
            el("code", { text: "yield handle.result()" }),
            " returns it as a string, as with the HTTP API's SendDurableExecutionCallbackSuccess body (unless the callback has a serdes). Fail sends it as the error: an object such as ",
            el("code", { text: '{"ErrorType": "Rejected", "ErrorMessage": "why"}' }),
            ". Heartbeat sends nothing.",
          ]),
          el("div", { class: "buttons" }, [succeed, fail, beat, format, problem, message]),
        ]);
        check();
        return block;
      });
      fill(sections.callbacks, el("h2", { text: "Open callbacks" }), ...blocks);
    }

    function toggle(key, defaultOpen, summary, content) {
      const node = el("details", { "data-key": key }, [el("summary", { text: summary }), ...content]);
      node.open = opened.has(key) ? opened.get(key) : defaultOpen;
      node.addEventListener("toggle", () => opened.set(key, node.open));
      return node;
    }

    function renderOperations(ops) {
      const rows = ops.map((op) => {
        const name = el("td", { class: "op" }, [el("span", { class: "kind", text: op.kind }), op.name === null ? null : el("span", { class: "opname", text: op.name })]);
        name.style.paddingLeft = `${8 + op.depth * 20}px`; // CSSOM: allowed by the CSP
        const notes = [];
        if (op.next_attempt) notes.push(`next attempt ${fmtTime(op.next_attempt)}`);
        if (op.wait_until && op.status === "STARTED") notes.push(`until ${fmtTime(op.wait_until)}`);
        if (op.callback_id) notes.push(`callback ${op.callback_id}`);
        if (op.deadline && op.status === "STARTED") notes.push(`times out at ${fmtTime(op.deadline)}`);
        if (op.function_name) notes.push(`invokes ${op.function_name}`);
        const parts = [];
        if (op.invoked) {
          parts.push(el("div", { class: "invoked" }, ["invoked execution ", el("a", { class: "invoked-link", href: executionUrl(op.invoked), text: op.invoked })]));
        }
        if (op.input) parts.push(toggle(op.id + ":input", false, "input", [payloadBlock("Input", op.input, "input")]));
        if (op.result) parts.push(toggle(op.id + ":result", false, "result", [payloadBlock("Result", op.result, "result")]));
        if (op.error) parts.push(toggle(op.id + ":error", true, `error: ${op.error.type}`, [errorBlock(op.error)]));
        return el("tr", { class: "opr", "data-op-id": op.id, "data-status": op.status }, [
          name,
          el("td", {}, [statusBadge(op.status)]),
          el("td", { class: "num", text: op.attempt ? String(op.attempt) : "" }),
          el("td", { class: "time", text: fmtTime(op.start) }),
          el("td", { class: "time", text: op.end === null ? "" : fmtTime(op.end) }),
          el("td", { class: "num", text: op.end === null ? "" : fmtDuration(op.end - op.start) }),
          el("td", { class: "detail" }, [notes.length ? el("div", { class: "note", text: notes.join(" · ") }) : null, ...parts]),
        ]);
      });
      const head = el("tr", {}, ["Operation", "Status", "Attempts", "Started", "Ended", "Took", "Details"].map((h) => el("th", { text: h })));
      const body = rows.length ? rows : [el("tr", { class: "empty" }, [el("td", { colspan: 7, text: "No operations yet." })])];
      fill(sections.operations, el("h2", { text: `Operations (${ops.length})` }), el("table", {}, [el("thead", {}, [head]), el("tbody", {}, body)]));
    }

    function eventRow(e) {
      return el("tr", { "data-event": e.n }, [
        el("td", { class: "num", text: String(e.n) }),
        el("td", { class: "time", text: fmtTime(e.time) }),
        el("td", { text: e.type }),
        el("td", { text: e.name || "" }),
        el("td", { class: "details", text: e.details }),
      ]);
    }

    function renderHistory(history) {
      const events = history.events.concat(extraEvents);
      const head = el("tr", {}, ["#", "Time", "Event", "Name", "Details"].map((h) => el("th", { text: h })));
      const shown = events.length;
      const parts = [el("h2", { text: `History (${history.total} events)` }), el("table", {}, [el("thead", {}, [head]), el("tbody", {}, events.map(eventRow))])];
      if (shown < history.total) {
        const more = el("button", { type: "button", id: "more-events", text: `Show more (${shown} of ${history.total})` });
        more.addEventListener("click", async () => {
          more.disabled = true;
          try {
            const doc = await api("GET", `${apiUrl(id)}/events?start=${shown}`);
            extraEvents = extraEvents.concat(doc.events);
            renderHistory(lastDoc.history);
          } catch (e) {
            more.disabled = false;
            more.textContent = `Show more (failed: ${e.message})`;
          }
        });
        parts.push(el("p", {}, [more]));
      }
      fill(sections.history, ...parts);
    }

    // ---- fork: the operation picker follows the operations
    const forkForm = document.getElementById("fork-form");
    const forkMessage = document.getElementById("fork-message");

    function renderForkOptions(ops) {
      const select = forkForm.elements.at;
      const chosen = select.value;
      const options = ops.map((op) =>
        el("option", { value: op.id, text: `${"\u00a0\u00a0".repeat(op.depth)}${op.kind}${op.name === null ? "" : " " + op.name} · ${op.status}` }),
      );
      if (!options.length) options.push(el("option", { value: "", text: "(no operations yet)" }));
      fill(select, ...options);
      if (chosen && ops.some((op) => op.id === chosen)) select.value = chosen;
    }

    forkForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { at: forkForm.elements.at.value };
      const name = forkForm.elements.name.value.trim();
      if (name) body.name = name;
      forkMessage.className = "note";
      forkMessage.textContent = "…";
      try {
        const doc = await api("POST", apiUrl(id) + "/fork", body);
        forkMessage.className = "ok";
        fill(forkMessage, doc.message + " ", el("a", { id: "fork-link", href: doc.url, text: `Open ${doc.execution}` }));
      } catch (e) {
        forkMessage.className = "problem";
        forkMessage.textContent = e.message;
      }
    });

    // ---- logs: the kept records, and new ones while the execution runs (the live tail)
    const logs = (() => {
      const MAX_ROWS = 2000; // older rows leave the page (the store keeps its own bound)
      const note = document.getElementById("logs-note");
      const box = document.getElementById("log-records");
      const level = document.querySelector("#logs select[name=level]");
      let after = 0;
      let dropped = 0;
      let shown = 0;
      let cut = 0;
      let live = true;
      let generation = 0;
      let tbody = null;

      function where(r) {
        let text = r.op_name || (r.op ? r.op.slice(0, 12) : "-");
        if (r.attempt !== null) text += ` #${r.attempt}`;
        return text;
      }

      function row(r) {
        const message = el("td", { class: "message" }, [el("pre", { text: r.message })]);
        if (r.exception) {
          message.append(el("details", {}, [el("summary", { text: "traceback" }), el("pre", { class: "stack", text: r.exception })]));
        }
        return el("tr", { class: `log l-${r.level}`, "data-seq": r.seq }, [
          el("td", { class: "num", text: String(r.seq) }),
          el("td", { class: "time", text: fmtTime(r.time) }),
          el("td", {}, [el("span", { class: "level", text: r.level })]),
          el("td", { class: "where", text: where(r) }),
          message,
        ]);
      }

      function describe() {
        const parts = [];
        if (shown) parts.push(`${shown.toLocaleString()} record${shown === 1 ? "" : "s"}`);
        else parts.push(live ? "No log records yet." : "No log records kept.");
        if (dropped) parts.push(`the ${dropped.toLocaleString()} oldest were dropped: the store keeps each execution's newest ($DURABLE_GEN_KEEP_LOGS)`);
        if (cut) parts.push(`the ${cut.toLocaleString()} oldest shown here left the page`);
        if (live) parts.push("new records appear as the execution checkpoints");
        note.textContent = parts.join(" · ");
      }

      function append(records) {
        if (!tbody) {
          const head = el("tr", {}, ["#", "Time", "Level", "Where", "Message"].map((h) => el("th", { text: h })));
          tbody = el("tbody");
          fill(box, el("table", {}, [el("thead", {}, [head]), tbody]));
        }
        const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
        tbody.append(...records.map(row));
        shown += records.length;
        while (tbody.rows.length > MAX_ROWS) {
          tbody.rows[0].remove();
          cut += 1;
        }
        if (atEnd) box.scrollTop = box.scrollHeight;
      }

      async function fetchNew() {
        const mine = generation;
        for (let page = 0; page < 20; page++) {
          const doc = await api("GET", `${apiUrl(id)}/logs?after=${after}&level=${encodeURIComponent(level.value)}`);
          if (mine !== generation) return; // the level changed meanwhile
          dropped = doc.dropped;
          live = doc.live;
          if (doc.records.length) append(doc.records);
          after = doc.last;
          if (!doc.more) break;
        }
        describe();
      }

      level.addEventListener("change", () => {
        generation += 1;
        after = dropped = shown = cut = 0;
        tbody = null;
        fill(box);
        fetchNew().catch((e) => {
          note.textContent = `not loaded: ${e.message}`;
        });
      });
      return { fetchNew };
    })();

    // ---- meter: read when opened, and again when the operations change while open
    const meterPanel = document.getElementById("meter");
    const prices = document.getElementById("prices");
    const meterBody = document.getElementById("meter-body");
    const PRICES_KEY = "durable_gen.console.prices";
    try {
      const saved = JSON.parse(window.localStorage.getItem(PRICES_KEY) || "{}");
      for (const input of prices.querySelectorAll("input")) {
        if (typeof saved[input.name] === "string") input.value = saved[input.name];
      }
    } catch (e) {
      // no storage (or a bad entry): start with empty prices
    }

    function fmtBytes(n) {
      if (n < 1024) return `${n.toLocaleString()} B`;
      if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
      return `${(n / 1048576).toFixed(1)} MiB`;
    }

    function fmtMoney(x, digits) {
      return x.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
    }

    function renderMeter(doc) {
      const m = doc.meter;
      const used = m.rows.filter((r) => r.operations || r.bytes);
      const head = el("tr", {}, ["Kind", "Operations", "Bytes persisted"].map((h) => el("th", { text: h })));
      const rows = used.map((r) => el("tr", { "data-kind": r.kind }, [el("td", { text: r.kind }), el("td", { class: "num", text: r.operations.toLocaleString() }), el("td", { class: "num", text: r.bytes.toLocaleString() })]));
      rows.push(el("tr", { class: "total" }, [el("td", { text: "Total" }), el("td", { class: "num", id: "meter-ops", text: m.operations.toLocaleString() }), el("td", { class: "num", id: "meter-bytes", text: m.bytes_persisted.toLocaleString() })]));
      const parts = [el("table", { class: "meter" }, [el("thead", {}, [head]), el("tbody", {}, rows)])];
      if (m.retained_byte_days !== null) parts.push(el("p", { class: "note", text: `data retained: ${fmtBytes(m.bytes_persisted)} × ${m.retention_days} days` }));
      if (m.largest_payloads.length) {
        parts.push(el("h3", { text: "Largest payloads" }));
        parts.push(el("ol", { class: "largest" }, m.largest_payloads.map((pl) => el("li", {}, [el("span", { class: "num", text: fmtBytes(pl.bytes) }), " ", el("span", { class: "what", text: `${pl.operation} ${pl.what}` })]))));
      }
      if (m.replay_children.length) parts.push(el("p", { class: "note", text: `results not stored (over 256 KiB, rebuilt on replay): ${m.replay_children.join(", ")}` }));
      for (const text of m.notes) parts.push(el("p", { class: "note", text }));
      const est = doc.estimate;
      if (est) {
        const cur = est.prices.currency ? ` (${est.prices.currency})` : "";
        const eh = el("tr", {}, [`Cost${cur}`, "Per execution", `Per month (${est.executions_per_month.toLocaleString()})`].map((h) => el("th", { text: h })));
        const lines = [
          ["durable operations", "operations"],
          ["data persisted", "persisted"],
          ["data retained", "retained"],
          ["total", "total"],
        ].map(([label, key]) => el("tr", { "data-cost": key }, [el("td", { text: label }), el("td", { class: "num", text: fmtMoney(est.per_execution[key], 6) }), el("td", { class: "num", text: fmtMoney(est.per_month[key], 2) })]));
        parts.push(el("h3", { text: "Cost estimate" }), el("table", { class: "estimate" }, [el("thead", {}, [eh]), el("tbody", {}, lines)]));
        if (est.retention_days === null) parts.push(el("p", { class: "note", text: "no retention period given: data retained is not priced" }));
      } else {
        parts.push(el("p", { class: "note", text: "Give the three prices above for a cost estimate." }));
      }
      fill(meterBody, ...parts);
    }

    async function loadMeter() {
      const q = new URLSearchParams();
      for (const input of prices.querySelectorAll("input")) {
        if (input.value.trim()) q.set(input.name, input.value.trim());
      }
      try {
        renderMeter(await api("GET", `${apiUrl(id)}/meter?${q.toString()}`));
      } catch (e) {
        fill(meterBody, el("p", { class: "problem", role: "alert", text: e.message }));
      }
    }

    meterPanel.addEventListener("toggle", () => {
      if (meterPanel.open) loadMeter();
    });
    prices.addEventListener("submit", (event) => {
      event.preventDefault();
      const saved = {};
      for (const input of prices.querySelectorAll("input")) saved[input.name] = input.value.trim();
      try {
        window.localStorage.setItem(PRICES_KEY, JSON.stringify(saved));
      } catch (e) {
        // not kept: still used for this estimate
      }
      loadMeter();
    });

    const poll = poller(async () => {
      let doc;
      try {
        doc = await api("GET", apiUrl(id));
      } catch (e) {
        if (e instanceof Refused && /no execution/.test(e.message)) {
          poll.stop("this execution was deleted");
          return;
        }
        throw e;
      }
      lastDoc = doc;
      const ex = doc.execution;
      if (changed("summary", ex) || ex.ended === null) renderSummary(ex);
      if (changed("actions", [ex.status, ex.live])) renderActions(ex);
      if (changed("callbacks", doc.callbacks.map((c) => [c.callback_id, c.last_heartbeat]))) renderCallbacks(doc.callbacks);
      if (changed("operations", doc.operations)) {
        renderOperations(doc.operations);
        renderForkOptions(doc.operations);
        if (meterPanel.open) loadMeter();
      }
      if (changed("history", [doc.history.total, extraEvents.length])) renderHistory(doc.history);
      await logs.fetchNew(); // after the status: what the execution logged before it ended is read
      if (!ex.live) poll.stop(`${ex.status.toLowerCase()} · not polling`);
    });

    const timeline = document.getElementById("timeline");
    if (timeline) {
      timeline.addEventListener("toggle", () => {
        const frame = timeline.querySelector("iframe");
        if (timeline.open) frame.setAttribute("src", frame.dataset.src);
      });
    }
    poll.start();
  }

  // ------------------------------------------------------------------ login page

  function loginPage() {
    const form = document.getElementById("login");
    const problem = document.getElementById("login-error");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.textContent = "";
      try {
        await api("POST", "/console/api/login", { token: form.elements.token.value });
        window.location.reload();
      } catch (e) {
        problem.textContent = e.message;
      }
    });
  }

  const pages = { list: listPage, execution: executionPage, login: loginPage };
  const start = pages[document.body.dataset.page];
  if (start) start();
})();
