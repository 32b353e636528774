// The operator console. Plain JavaScript, no libraries; it requests nothing but this app's own API.
// The function key comes from this page's ?code=, stays in this closure and goes out only as the x-functions-key
// header (and in the URL of a report opened in a new tab). Text from job folders enters the page through
// textContent only.
(function () {
  "use strict";

  var root = document.getElementById("console");
  var POLL_MS = Number(root.getAttribute("data-poll-ms")) || 3000;
  var PAGE_SIZE = Number(root.getAttribute("data-page-size")) || 50;
  var LOG_TAIL = 200;
  var CANCELLABLE = ["created", "queued", "running"];
  var RERUNNABLE = ["failed", "timeout", "cancelled"];
  var KEY = new URLSearchParams(window.location.search).get("code") || "";

  var $ = function (id) { return document.getElementById(id); };
  var ui = {
    refreshed: $("refreshed"), refresh: $("refresh"), auth: $("auth"), problem: $("problem"),
    queueName: $("queue-name"), queueCount: $("queue-count"), poisonName: $("poison-name"),
    poisonCount: $("poison-count"), poisonBox: $("poison-box"), poisonBody: $("poison-table").tBodies[0],
    requeueAll: $("requeue-all"), statusFilter: $("status-filter"), prefix: $("prefix"),
    jobsBody: $("jobs").tBodies[0], jobsSummary: $("jobs-summary"), noJobs: $("no-jobs"), more: $("more"),
    logPanel: $("log-panel"), logJob: $("log-job"), logText: $("log-text"), logRefresh: $("log-refresh"),
    logClose: $("log-close"), activity: $("activity"), noActivity: $("no-activity"),
    dialog: $("confirm"), dialogText: $("confirm-text"), dialogYes: $("confirm-yes"), dialogNo: $("confirm-no")
  };

  var state = {
    pages: 1,           // pages of the job list shown (the "More jobs" button adds one)
    rows: new Map(),    // jobname -> {tr, job, cells}
    poison: new Set(),  // job names with a message in the poison queue
    logJob: null,       // the job whose job.log is shown
    locked: false,      // a 401 was answered: no data, no more calls
    generation: 0,      // bumped when the filters change: answers of older requests are dropped
    asked: 0,           // job lists asked for, and the newest shown: an older answer never overwrites a newer
    shown: 0,
    timer: null,
    busy: false
  };

  // --- the API -------------------------------------------------------------------------------------------

  function Unauthorized() {}

  // One call to this app: {status, data (parsed JSON or null), text}. A 401 locks the page and throws.
  function call(method, path, body) {
    var headers = {"Accept": "application/json, text/plain"};
    if (KEY) headers["x-functions-key"] = KEY;
    var init = {method: method, headers: headers, cache: "no-store", credentials: "same-origin", redirect: "error",
                referrerPolicy: "no-referrer"};
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        if ((response.headers.get("content-type") || "").indexOf("json") >= 0) {
          try { data = JSON.parse(text); } catch (e) { data = null; }
        }
        if (response.status === 401) {
          lockOut();
          throw new Unauthorized();
        }
        return {status: response.status, data: data, text: text};
      });
    });
  }

  function said(answer) {
    // What an answer says, in words: its JSON error or message, or the start of its text.
    var data = answer.data;
    if (data && typeof data === "object") {
      if (typeof data.error === "string") return data.error;
      if (typeof data.message === "string") return data.message;
    }
    return (answer.text || "").slice(0, 300);
  }

  function jobPath(name) { return "/api/jobs/" + encodeURIComponent(name); }

  // --- refreshing ----------------------------------------------------------------------------------------

  function filters() {
    var ticked = Array.prototype.filter.call(
      ui.statusFilter.querySelectorAll("input[type=checkbox]"), function (box) { return box.checked; }
    ).map(function (box) { return box.value; });
    return {statuses: ticked, prefix: ui.prefix.value.trim()};
  }

  function listUrl(chosen, after) {
    var query = new URLSearchParams();
    chosen.statuses.forEach(function (status) { query.append("status", status); });
    if (chosen.prefix) query.set("prefix", chosen.prefix);
    query.set("limit", String(PAGE_SIZE));
    if (after) query.set("after", after);
    return "/api/jobs?" + query.toString();
  }

  // The job list, as many pages as are shown, following the `next` cursors.
  function fetchJobs() {
    var chosen = filters(), generation = state.generation, jobs = [], mine = ++state.asked;
    function page(after, left) {
      return call("GET", listUrl(chosen, after)).then(function (answer) {
        if (answer.status !== 200 || !answer.data || !Array.isArray(answer.data.jobs)) {
          throw new Error("the job list answered HTTP " + answer.status + ": " + said(answer));
        }
        jobs = jobs.concat(answer.data.jobs);
        var next = answer.data.next || null;
        if (next && left > 1) return page(next, left - 1);
        return next;
      });
    }
    return page(null, state.pages).then(function (next) {
      if (generation !== state.generation || mine < state.shown || state.locked) return;
      state.shown = mine;
      showJobs(jobs, next);
    });
  }

  function fetchQueue() {
    return call("GET", "/api/queue").then(function (answer) {
      if (answer.status !== 200 || !answer.data) {
        throw new Error("the queue answered HTTP " + answer.status + ": " + said(answer));
      }
      if (!state.locked) showQueue(answer.data);
    });
  }

  function refresh() {
    if (state.locked) return Promise.resolve();
    if (state.timer !== null) { clearTimeout(state.timer); state.timer = null; }
    state.busy = true;
    var problems = [];
    function note(error) {
      if (error instanceof Unauthorized) return;
      problems.push(error && error.message ? error.message : String(error));
    }
    // the queue first, so that a job's "requeue" button knows the poison list
    return fetchQueue().catch(note).then(function () {
      return fetchJobs().catch(note);
    }).then(function () {
      return state.logJob ? loadLog(state.logJob).catch(note) : null;
    }).then(function () {
      state.busy = false;
      if (state.locked) return;
      showProblems(problems);
      ui.refreshed.textContent = (problems.length ? "last tried " : "refreshed ") + clock(new Date()) +
        "; every " + Math.round(POLL_MS / 1000) + " s";
      schedule();
    });
  }

  function schedule() {
    if (state.locked) return;
    if (state.timer !== null) clearTimeout(state.timer);
    state.timer = setTimeout(function () {
      state.timer = null;
      if (document.hidden) return;  // polled again when the tab is shown
      refresh();
    }, POLL_MS);
  }

  function showProblems(problems) {
    ui.problem.hidden = problems.length === 0;
    ui.problem.textContent = problems.length
      ? "Could not refresh everything (what is shown may be out of date): " + problems.join("; ")
      : "";
  }

  // A 401: say so, and show nothing of the app's data (and stop asking).
  function lockOut() {
    if (state.locked) return;
    state.locked = true;
    if (state.timer !== null) { clearTimeout(state.timer); state.timer = null; }
    ui.auth.hidden = false;
    ui.problem.hidden = true;
    clear(ui.jobsBody);
    state.rows.clear();
    clear(ui.poisonBody);
    state.poison.clear();
    ui.poisonBox.hidden = true;
    ui.queueCount.textContent = "—";
    ui.poisonCount.textContent = "—";
    ui.queueName.textContent = "the queue";
    ui.poisonName.textContent = "the poison queue";
    ui.jobsSummary.textContent = "";
    ui.noJobs.hidden = true;
    ui.more.hidden = true;
    closeLog();
    ui.refreshed.textContent = "no key";
    Array.prototype.forEach.call(root.querySelectorAll("button, input"), function (el) { el.disabled = true; });
    if (ui.dialog.open) ui.dialog.close();
  }

  // --- the job table -------------------------------------------------------------------------------------

  function showJobs(jobs, next) {
    var seen = new Set();
    var before = ui.jobsBody.firstChild;
    jobs.forEach(function (job) {
      if (!job || typeof job.jobname !== "string" || seen.has(job.jobname)) return;
      seen.add(job.jobname);
      var row = state.rows.get(job.jobname);
      if (!row) {
        row = makeRow(job.jobname);
        state.rows.set(job.jobname, row);
      }
      updateRow(row, job);
      if (row.tr !== before) ui.jobsBody.insertBefore(row.tr, before);
      else before = before.nextSibling;
    });
    state.rows.forEach(function (row, name) {
      if (!seen.has(name)) {
        row.tr.remove();
        state.rows.delete(name);
      }
    });
    ui.noJobs.hidden = seen.size > 0;
    ui.more.hidden = !next;
    ui.jobsSummary.textContent = seen.size + (seen.size === 1 ? " job shown" : " jobs shown") +
      (next ? " (more below)" : "");
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function setText(node, text) {
    text = text === undefined || text === null ? "" : String(text);
    if (node.textContent !== text) node.textContent = text;
  }

  function makeRow(name) {
    var tr = el("tr");
    tr.setAttribute("data-job", name);
    var cells = {
      job: el("td", "job"), status: el("td", "status"), progress: el("td", "progress"),
      attempt: el("td", "num attempt"), created: el("td", "when created"), updated: el("td", "when updated"),
      seconds: el("td", "num seconds"), actions: el("td", "actions")
    };
    cells.name = el("div", "name", name);
    cells.message = el("div", "message");
    cells.job.appendChild(cells.name);
    cells.job.appendChild(cells.message);
    cells.badge = el("span", "badge");
    cells.status.appendChild(cells.badge);
    cells.bar = el("div", "bar");
    cells.bar.setAttribute("role", "progressbar");
    cells.bar.setAttribute("aria-valuemin", "0");
    cells.bar.setAttribute("aria-valuemax", "100");
    cells.fill = el("div", "fill");
    cells.bar.appendChild(cells.fill);
    cells.step = el("div", "step");
    cells.progress.appendChild(cells.bar);
    cells.progress.appendChild(cells.step);
    ["job", "status", "progress", "attempt", "created", "updated", "seconds", "actions"].forEach(function (k) {
      tr.appendChild(cells[k]);
    });
    return {tr: tr, cells: cells, job: null, actionsKey: ""};
  }

  function updateRow(row, job) {
    var c = row.cells, status = typeof job.status === "string" ? job.status : "unreadable";
    var progress = job.progress && typeof job.progress === "object" ? job.progress : {};
    var percent = Math.max(0, Math.min(100, Number(progress.percent) || 0));
    var message = typeof job.message === "string" ? job.message : "";
    row.job = job;
    row.tr.setAttribute("data-status", status);
    setText(c.message, message);
    c.message.title = message;
    setText(c.badge, status);
    c.badge.className = "badge s-" + status.replace(/[^a-z]/g, "");
    c.bar.className = "bar s-" + status.replace(/[^a-z]/g, "");
    if (c.bar.getAttribute("aria-valuenow") !== String(percent)) {
      c.bar.setAttribute("aria-valuenow", String(percent));
      c.fill.style.width = percent + "%";
    }
    var step = typeof progress.step === "string" ? progress.step : "";
    c.bar.setAttribute("aria-valuetext", (step ? step + ", " : "") + percent + "%");
    var idle = !step && percent === 0;  // never started: no bar
    c.progress.classList.toggle("idle", idle);
    setText(c.step, idle ? "not started" : (step ? step + " · " : "") + percent + "%");
    setText(c.attempt, job.attempt === undefined || job.attempt === null ? "" : job.attempt);
    setText(c.created, when(job.created));
    setText(c.updated, when(job.updated));
    setText(c.seconds, duration(job.seconds));
    var poisoned = state.poison.has(job.jobname);
    var key = status + (poisoned ? "+poison" : "");
    if (row.actionsKey !== key) {
      row.actionsKey = key;
      showActions(c.actions, job.jobname, status, poisoned);
    }
  }

  function showActions(cell, name, status, poisoned) {
    clear(cell);
    function button(label, title, action, danger) {
      var b = el("button", danger ? "danger" : "quiet", label);
      b.type = "button";
      b.title = title;
      b.setAttribute("data-action", action);
      b.addEventListener("click", function () { act(action, name); });
      cell.appendChild(b);
    }
    if (status === "completed") button("report", "open the job's report in a new tab", "report");
    button("log", "show the last " + LOG_TAIL + " lines of job.log", "log");
    if (CANCELLABLE.indexOf(status) >= 0) button("cancel", "cancel this job", "cancel", true);
    if (RERUNNABLE.indexOf(status) >= 0) button("re-run", "queue this job again", "rerun");
    if (poisoned) button("requeue", "move its message from the poison queue back to the queue", "requeue");
  }

  // --- the queue panel -----------------------------------------------------------------------------------

  function showQueue(data) {
    var queue = data.queue || {}, poison = data.poison || {};
    setText(ui.queueName, queue.name || "the queue");
    setText(ui.poisonName, poison.name || "the poison queue");
    setText(ui.queueCount, count(queue.count));
    setText(ui.poisonCount, count(poison.count));
    ui.poisonCount.parentNode.classList.toggle("nonzero", Number(poison.count) > 0);
    var oldest = Array.isArray(poison.oldest) ? poison.oldest : [];
    var names = new Set();
    clear(ui.poisonBody);
    oldest.forEach(function (message) {
      if (!message || typeof message !== "object") return;
      var tr = el("tr"), name = typeof message.jobname === "string" ? message.jobname : null;
      var job = el("td");
      if (name) {
        names.add(name);
        job.appendChild(el("span", "mono", name));
      } else {
        job.appendChild(el("span", "note", "no job: " + (message.error || "unreadable message")));
      }
      tr.appendChild(job);
      tr.appendChild(el("td", "when", when(message.inserted)));
      tr.appendChild(el("td", "mono", message.id || ""));
      var action = el("td", "actions");
      if (name) {
        var b = el("button", "quiet", "requeue");
        b.type = "button";
        b.setAttribute("data-action", "requeue");
        b.addEventListener("click", function () { act("requeue", name); });
        action.appendChild(b);
      }
      tr.appendChild(action);
      ui.poisonBody.appendChild(tr);
    });
    ui.poisonBox.hidden = oldest.length === 0 && !(Number(poison.count) > 0);
    var changed = names.size !== state.poison.size || Array.from(names).some(function (n) {
      return !state.poison.has(n);
    });
    state.poison = names;
    if (changed) state.rows.forEach(function (row) { if (row.job) updateRow(row, row.job); });
  }

  function count(value) {
    return typeof value === "number" && isFinite(value) ? String(value) : "—";
  }

  // --- actions -------------------------------------------------------------------------------------------

  var ACTIONS = {
    cancel: {
      ask: function (name) { return "Cancel job " + name + "? A queued job will not run; a running job is stopped within seconds and keeps no results."; },
      confirm: "Cancel the job",
      send: function (name) { return call("POST", jobPath(name) + "/cancel"); }
    },
    rerun: {
      ask: function (name) { return "Queue job " + name + " again? It runs from the start, as a new attempt."; },
      confirm: "Re-run the job",
      send: function (name) { return call("POST", "/api/enqueue", {jobname: name, rerun: true}); }
    },
    requeue: {
      ask: function (name) { return "Move the message of job " + name + " from the poison queue back to the queue? The job runs again."; },
      confirm: "Requeue",
      send: function (name) { return call("POST", "/api/queue/poison/requeue", {jobnames: [name]}); }
    },
    requeueAll: {
      ask: function () { return "Move every message of the poison queue back to the queue? Their jobs run again."; },
      confirm: "Requeue all",
      send: function () { return call("POST", "/api/queue/poison/requeue", {all: true}); }
    }
  };

  function act(action, name) {
    if (state.locked) return;
    if (action === "report") return openReport(name);
    if (action === "log") return openLog(name);
    var spec = ACTIONS[action];
    var label = action === "requeueAll" ? "requeue all from poison" : (action === "rerun" ? "re-run" : action) + " " + name;
    ask(spec.ask(name), spec.confirm).then(function (yes) {
      if (!yes) return;
      return spec.send(name).then(function (answer) {
        record(label, answer.status, said(answer));
      }, function (error) {
        if (!(error instanceof Unauthorized)) record(label, null, "the app could not be reached: " + error);
      }).then(refresh);
    });
  }

  function record(label, status, words) {
    var item = el("li");
    item.appendChild(el("span", "note", clock(new Date()) + " "));
    item.appendChild(el("span", null, label + ": "));
    var ok = status !== null && status >= 200 && status < 300;
    item.appendChild(el("span", "code " + (ok ? "ok" : "bad"), status === null ? "no answer" : "HTTP " + status));
    if (words) item.appendChild(el("span", null, " " + words));
    ui.activity.insertBefore(item, ui.activity.firstChild);
    while (ui.activity.children.length > 12) ui.activity.removeChild(ui.activity.lastChild);
    ui.noActivity.hidden = true;
  }

  // A confirmation in a <dialog>: resolves true (confirmed) or false (kept, Escape).
  function ask(text, confirmLabel) {
    return new Promise(function (resolve) {
      ui.dialogText.textContent = text;
      ui.dialogYes.textContent = confirmLabel;
      function done(answer) {
        ui.dialogYes.removeEventListener("click", yes);
        ui.dialogNo.removeEventListener("click", no);
        ui.dialog.removeEventListener("close", no);
        if (ui.dialog.open) ui.dialog.close();
        resolve(answer);
      }
      function yes() { done(true); }
      function no() { done(false); }
      ui.dialogYes.addEventListener("click", yes);
      ui.dialogNo.addEventListener("click", no);
      ui.dialog.addEventListener("close", no);
      ui.dialog.showModal();
      ui.dialogNo.focus();
    });
  }

  function openReport(name) {
    var url = jobPath(name) + "/report" + (KEY ? "?code=" + encodeURIComponent(KEY) : "");
    window.open(url, "_blank", "noopener,noreferrer");
  }

  // --- job.log -------------------------------------------------------------------------------------------

  function openLog(name) {
    state.logJob = name;
    ui.logPanel.hidden = false;
    setText(ui.logJob, name);
    ui.logText.textContent = "loading…";
    loadLog(name).catch(function (error) {
      if (!(error instanceof Unauthorized)) ui.logText.textContent = "could not load job.log: " + error;
    });
    ui.logPanel.scrollIntoView({block: "nearest"});
  }

  function loadLog(name) {
    return call("GET", jobPath(name) + "/files/job.log?tail=" + LOG_TAIL).then(function (answer) {
      if (state.logJob !== name || state.locked) return;
      var pre = ui.logText;
      var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      var text = answer.status === 200
        ? (answer.text || "(job.log is empty)")
        : "HTTP " + answer.status + ": " + (said(answer) || "no job.log");
      setText(pre, text);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    });
  }

  function closeLog() {
    state.logJob = null;
    ui.logPanel.hidden = true;
    ui.logText.textContent = "";
    ui.logJob.textContent = "";
  }

  // --- formatting ----------------------------------------------------------------------------------------

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function clock(date) { return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds()); }

  function when(stamp) {
    if (!stamp) return "—";
    var date = new Date(stamp);
    if (isNaN(date.getTime())) return String(stamp);
    return date.toISOString().slice(0, 19).replace("T", " ");
  }

  function duration(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "—";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    var s = Math.round(seconds);
    if (s < 3600) return Math.floor(s / 60) + " min " + pad(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + pad(Math.floor((s % 3600) / 60)) + " min";
  }

  // --- wiring --------------------------------------------------------------------------------------------

  function filtersChanged() {
    state.generation += 1;
    state.pages = 1;
    refresh();
  }

  var typing = null;
  ui.prefix.addEventListener("input", function () {
    if (typing !== null) clearTimeout(typing);
    typing = setTimeout(function () { typing = null; filtersChanged(); }, 300);
  });
  ui.prefix.addEventListener("keydown", function (event) {  // Enter: at once
    if (event.key !== "Enter") return;
    if (typing !== null) { clearTimeout(typing); typing = null; }
    filtersChanged();
  });
  ui.statusFilter.addEventListener("change", filtersChanged);
  ui.refresh.addEventListener("click", function () { refresh(); });
  ui.more.addEventListener("click", function () { state.pages += 1; refresh(); });
  ui.requeueAll.addEventListener("click", function () { act("requeueAll", ""); });
  ui.logRefresh.addEventListener("click", function () { if (state.logJob) openLog(state.logJob); });
  ui.logClose.addEventListener("click", closeLog);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !state.busy && state.timer === null) refresh();
  });

  refresh();
})();
