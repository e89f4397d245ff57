/*
 * Autosave for exercise forms (progressive enhancement: the forms work without this).
 *
 * - Every change is copied to localStorage at once, so a closed tab or a dropped
 *   connection loses nothing; the copy is restored on load when it holds typing the
 *   server has not seen (it was based on the version the server still has).
 * - A few seconds after typing stops, the form is saved as a draft with PUT to the JSON
 *   API, carrying the version last seen and the CSRF token.
 * - A 409 means the answer was saved elsewhere meanwhile: the patient sees both
 *   versions and chooses; nothing is overwritten silently.
 * - Answers already submitted are not turned back into drafts behind the patient's back:
 *   their changes are kept on this device until they press "Submit changes" or "Save draft".
 */
(function () {
  "use strict";

  var DELAY_MS = 2500;
  var SKIP = { csrf_token: true, version: true, page: true, action: true };

  function setPath(target, parts, value) {
    var node = target;
    for (var i = 0; i < parts.length - 1; i++) {
      if (typeof node[parts[i]] !== "object" || node[parts[i]] === null) node[parts[i]] = {};
      node = node[parts[i]];
    }
    node[parts[parts.length - 1]] = value;
  }

  function toLists(node) {
    if (node === null || typeof node !== "object") return node;
    var keys = Object.keys(node);
    keys.forEach(function (k) { node[k] = toLists(node[k]); });
    if (keys.length && keys.every(function (k) { return /^\d+$/.test(k); })) {
      return keys.map(Number).sort(function (a, b) { return a - b; }).map(function (k) { return node[String(k)]; });
    }
    return node;
  }

  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && !SKIP[el.name] && el.type !== "submit" && el.type !== "button";
    });
  }

  /* The answer in the JSON API's shape: "rows.0.activity" becomes rows[0].activity. */
  function serialize(form) {
    var data = {};
    fields(form).forEach(function (el) {
      if (el.type === "radio") {
        if (el.checked) setPath(data, el.name.split("."), el.value);
        else if (!form.querySelector('input[type="radio"][name="' + el.name + '"]:checked')) setPath(data, el.name.split("."), null);
        return;
      }
      var value = el.type === "checkbox" ? (el.checked ? true : null) : (el.value === "" ? null : el.value);
      setPath(data, el.name.split("."), value);
    });
    return toLists(data);
  }

  function snapshot(form) {
    return fields(form).map(function (el) {
      return [el.name, el.type === "checkbox" || el.type === "radio" ? el.checked : el.value, el.type === "radio" ? el.value : null];
    });
  }

  function restore(form, entries) {
    var byName = {};
    fields(form).forEach(function (el) { (byName[el.name] = byName[el.name] || []).push(el); });
    entries.forEach(function (entry) {
      (byName[entry[0]] || []).forEach(function (el) {
        if (el.type === "radio") { if (el.value === entry[2]) el.checked = entry[1]; }
        else if (el.type === "checkbox") el.checked = entry[1];
        else el.value = entry[1];
      });
    });
  }

  function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

  function labelFor(form, name) {
    var el = form.querySelector('[name="' + name.replace(/"/g, "") + '"]');
    var label = el && el.id ? form.querySelector('label[for="' + el.id + '"]') : null;
    if (label) return label.textContent.replace("*", "").replace("(needed to submit)", "").trim();
    var group = el && el.closest("fieldset");
    var legend = group ? group.querySelector("legend") : null;
    return legend ? legend.textContent.replace("*", "").trim() : name;
  }

  function flatten(prefix, value, out) {
    if (Array.isArray(value)) value.forEach(function (v, i) { flatten(prefix + "." + i, v, out); });
    else if (value !== null && typeof value === "object") Object.keys(value).forEach(function (k) { flatten(prefix ? prefix + "." + k : k, value[k], out); });
    else if (value !== null && value !== "") out.push([prefix, value === true ? "yes" : String(value)]);
    return out;
  }

  function Autosave(form) {
    this.form = form;
    this.url = form.getAttribute("data-autosave-url");
    this.key = form.getAttribute("data-storage-key");
    this.submitted = form.getAttribute("data-status") === "submitted";
    this.version = form.querySelector('input[name="version"]');
    this.csrf = form.querySelector('input[name="csrf_token"]').value;
    this.status = form.querySelector(".autosave-status");
    this.timer = null;
    this.inflight = null;
    this.again = false;
    this.conflictBox = null;
  }

  Autosave.prototype.say = function (text) { if (this.status) this.status.textContent = text; };

  Autosave.prototype.read = function () {
    try { return JSON.parse(window.localStorage.getItem(this.key) || "null"); } catch (e) { return null; }
  };

  Autosave.prototype.write = function (dirty) {
    try {
      window.localStorage.setItem(this.key, JSON.stringify({
        fields: snapshot(this.form), base: Number(this.version.value), dirty: dirty, at: Date.now()
      }));
    } catch (e) { /* storage full or blocked: the server copy still works */ }
  };

  Autosave.prototype.forget = function () {
    try { window.localStorage.removeItem(this.key); } catch (e) { /* nothing to do */ }
  };

  Autosave.prototype.start = function () {
    var self = this;
    var stored = this.read();
    if (stored && stored.dirty && stored.base >= Number(this.version.value) && !same(stored.fields, snapshot(this.form))) {
      restore(this.form, stored.fields);
      this.say("We brought back what you typed earlier on this device.");
      if (!this.submitted) this.schedule(500);
    } else if (stored && (!stored.dirty || stored.base < Number(this.version.value))) {
      this.forget();
    }
    var onEdit = function () {
      self.write(true);
      if (self.submitted) {
        self.say("Your changes are kept on this device. Press “Submit changes” to send them to your therapist.");
        return;
      }
      self.schedule(DELAY_MS);
    };
    this.form.addEventListener("input", onEdit);
    this.form.addEventListener("change", onEdit);
    this.form.addEventListener("submit", function (event) { self.onSubmit(event); });
  };

  Autosave.prototype.schedule = function (delay) {
    var self = this;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(function () { self.save(null); }, delay);
  };

  Autosave.prototype.save = function (overVersion) {
    var self = this;
    if (this.inflight) { this.again = true; return this.inflight; }
    if (this.conflictBox && overVersion === null) return Promise.resolve();
    var body = { data: serialize(this.form), version: overVersion === null ? Number(this.version.value) : overVersion };
    this.say("Saving…");
    this.inflight = window.fetch(this.url, {
      method: "PUT",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": this.csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) { return self.handle(response.status, json); });
    }).catch(function () {
      self.say("Not saved just now. What you typed is kept on this device, and we will try again.");
    }).then(function () {
      self.inflight = null;
      if (self.again) { self.again = false; self.schedule(DELAY_MS); }
    });
    return this.inflight;
  };

  Autosave.prototype.handle = function (status, json) {
    if ((status === 200 || status === 422) && json.response) {
      if (json.response && json.response.version) this.version.value = json.response.version;
      this.write(false);
      var time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      this.say(status === 200 ? "Saved at " + time + "." : "Saved at " + time + ". Some answers need another look before you submit; press “Save draft” to see which.");
      return;
    }
    if (status === 409 && json.code === "stale_draft") { this.showConflict(json.current); return; }
    if (status === 401 || status === 403) {
      this.say("Not saved: your session may have ended. What you typed is kept on this device; please log in again.");
      return;
    }
    if (status < 500 && typeof json.detail === "string") {
      this.say("Not saved: " + json.detail + " What you typed is kept on this device.");
      return;
    }
    this.say("Not saved just now. What you typed is kept on this device, and we will try again.");
    this.again = true;
  };

  Autosave.prototype.showConflict = function (current) {
    var self = this;
    if (this.conflictBox) this.conflictBox.remove();
    var box = document.createElement("div");
    box.className = "conflict";
    box.setAttribute("role", "alert");
    var heading = document.createElement("p");
    heading.innerHTML = "<strong>This was saved somewhere else while you were typing.</strong> Nothing has been overwritten. Choose which version to keep.";
    box.appendChild(heading);
    if (current && current.data) {
      var title = document.createElement("p");
      title.textContent = "The saved version:";
      box.appendChild(title);
      var list = document.createElement("dl");
      list.className = "answers";
      flatten("", current.data, []).forEach(function (pair) {
        var dt = document.createElement("dt");
        dt.textContent = labelFor(self.form, pair[0]);
        var dd = document.createElement("dd");
        dd.textContent = pair[1];
        list.appendChild(dt);
        list.appendChild(dd);
      });
      box.appendChild(list);
    }
    var mine = document.createElement("button");
    mine.type = "button";
    mine.className = "primary";
    mine.textContent = "Keep my version (in the form)";
    mine.addEventListener("click", function () {
      box.remove();
      self.conflictBox = null;
      self.save(current ? current.version : 0);
    });
    var theirs = document.createElement("button");
    theirs.type = "button";
    theirs.textContent = "Use the saved version";
    theirs.addEventListener("click", function () {
      self.forget();
      window.location.reload();
    });
    box.appendChild(mine);
    box.appendChild(document.createTextNode(" "));
    box.appendChild(theirs);
    this.form.parentNode.insertBefore(box, this.form);
    this.conflictBox = box;
    this.say("Not saved: this answer was changed somewhere else. Please choose a version above.");
    mine.focus();
  };

  Autosave.prototype.onSubmit = function (event) {
    var self = this;
    window.clearTimeout(this.timer);
    if (this.inflight) {
      /* Let the running save finish so the form posts the newest version number. */
      event.preventDefault();
      var submitter = event.submitter || null;
      this.inflight.then(function () {
        self.forget();
        if (submitter && self.form.requestSubmit) self.form.requestSubmit(submitter);
        else self.form.submit();
      });
      return;
    }
    this.forget();
  };

  function init() {
    if (!window.fetch || !window.JSON) return;
    Array.prototype.forEach.call(document.querySelectorAll("form[data-autosave-url]"), function (form) {
      new Autosave(form).start();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
