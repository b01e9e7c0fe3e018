/* prefill widget: fills this page's own form from the personal link it was opened with.
   Embed: <script src="https://PREFILL/widget.js" data-form="FORM_ID" referrerpolicy="no-referrer"
   [data-fields="first_name:fname,..."] [data-target="#my-form"] [data-contact="#card"]
   [data-api="https://PREFILL"]></script>   No cookies, no storage, no dependencies. */
(function () {
  "use strict";
  var TEXTS = __PREFILL_TEXTS__;
  var MAX_TOKEN_LENGTH = 512;
  var TIMEOUT_MS = 8000;
  var SKIPPED_TYPES = { hidden: 1, password: 1, file: 1, submit: 1, button: 1, reset: 1, image: 1 };
  var script = document.currentScript;
  if (!script) return;
  var options = script.dataset;

  function finish(state) {
    script.setAttribute("data-prefill-state", state);
    document.dispatchEvent(new CustomEvent("prefill:done", { detail: { state: state } }));
  }

  // Removes the token from the address bar at once, so that nothing that runs or loads later
  // (analytics, a bookmark, a shared URL, a Referer) gets it. Query `t` or fragment `t`.
  function takeToken() {
    var url = new URL(location.href);
    var token = null;
    if (url.searchParams.has("t")) {
      token = url.searchParams.get("t");
      url.searchParams.delete("t");
    }
    var fragment = new URLSearchParams(url.hash.slice(1));
    if (url.hash.length > 1 && fragment.has("t")) {
      token = token || fragment.get("t");
      fragment.delete("t");
      var rest = fragment.toString();
      url.hash = rest ? "#" + rest : "";
    }
    if (url.href !== location.href) history.replaceState(history.state, "", url.href);
    return token;
  }

  // "first_name:fname, email:mail" -> {first_name: "fname", email: "mail"}; ":" alone skips.
  function fieldMapping(text) {
    var mapping = {};
    (text || "").split(",").forEach(function (pair) {
      var parts = pair.split(":");
      if (parts.length === 2 && parts[0].trim()) mapping[parts[0].trim()] = parts[1].trim();
    });
    return mapping;
  }

  function whenReady(callback) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", callback, { once: true });
    } else {
      callback();
    }
  }

  // Only empty fields are filled: whatever the person typed meanwhile is kept.
  function fill(field, value) {
    var type = (field.type || "").toLowerCase();
    if (SKIPPED_TYPES[type] || field.disabled || field.readOnly) return false;
    if (type === "checkbox" || type === "radio") {
      if (field.value !== value) return false;
      field.checked = true;
    } else if (field.tagName === "SELECT") {
      var known = Array.prototype.some.call(field.options, function (option) {
        return option.value === value;
      });
      if (!known || field.value !== "") return false;
      field.value = value;
    } else {
      if (field.value !== "") return false;
      field.value = value;
    }
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function fillAll(values) {
    var root = options.target ? document.querySelector(options.target) : document;
    if (!root) return 0;
    var mapping = fieldMapping(options.fields);
    var fields = root.querySelectorAll("input, select, textarea");
    var filled = 0;
    Object.keys(values).forEach(function (name) {
      var value = values[name];
      var target = Object.prototype.hasOwnProperty.call(mapping, name) ? mapping[name] : name;
      // A masked value (m•••@example.fi) is shown on the hosted form only: here it would be
      // sent to the page's own backend as if it were the real value.
      if (!target || typeof value !== "string" || !value || value.indexOf("\u2022") >= 0) return;
      Array.prototype.forEach.call(fields, function (field) {
        if (field.name === target && fill(field, value)) filled += 1;
      });
    });
    return filled;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = "prefill-contact-" + className;
    if (text) node.textContent = text;
    return node;
  }

  function link(href, text, className) {
    var node = element("a", className, text);
    node.href = href;
    node.rel = "noreferrer";
    return node;
  }

  // Built with DOM calls and textContent only: no markup from the answer is ever parsed.
  function showContact(contact, locale) {
    var container = options.contact && document.querySelector(options.contact);
    if (!container || !contact) return;
    var texts = TEXTS[locale] || TEXTS.en;
    var card = element("div");
    card.className = "prefill-contact";
    card.lang = locale;
    card.appendChild(element("p", "heading", texts.heading));
    if (contact.photo_url) {
      var photo = element("img", "photo");
      photo.src = contact.photo_url;
      photo.alt = contact.name;
      photo.width = photo.height = 96;
      photo.referrerPolicy = "no-referrer";
      card.appendChild(photo);
    }
    card.appendChild(element("p", "name", contact.name));
    if (contact.title) card.appendChild(element("p", "title", contact.title));
    var actions = element("ul", "actions");
    if (contact.phone) {
      actions.appendChild(element("li")).appendChild(link("tel:" + contact.phone, texts.call + " " + contact.phone, "phone"));
    }
    actions.appendChild(element("li")).appendChild(link("mailto:" + contact.email, contact.email, "email"));
    var vcard = link(contact.vcard_url, texts.add_to_contacts, "vcard");
    vcard.setAttribute("download", "");
    actions.appendChild(element("li")).appendChild(vcard);
    card.appendChild(actions);
    container.replaceChildren(card);
    container.hidden = false;
  }

  try {
    var token = takeToken();
    if (!token || token.length > MAX_TOKEN_LENGTH || !options.form) return finish("no-token");
    var api = (options.api || new URL(script.src).origin).replace(/\/+$/, "");
    var controller = new AbortController();
    setTimeout(function () { controller.abort(); }, TIMEOUT_MS);
    fetch(api + "/api/v1/forms/" + encodeURIComponent(options.form) + "/prefill?t=" + encodeURIComponent(token), {
      credentials: "omit",
      referrerPolicy: "no-referrer",
      cache: "no-store",
      mode: "cors",
      signal: controller.signal,
    })
      .then(function (response) {
        if (!response.ok) throw new Error("prefill: HTTP " + response.status);
        return response.json();
      })
      .then(function (answer) {
        whenReady(function () {
          try {
            if (!answer.prefilled || typeof answer.values !== "object") return finish("empty");
            var filled = fillAll(answer.values);
            showContact(answer.contact, answer.locale);
            finish(filled ? "filled" : "empty");
          } catch (error) {
            finish("error");
          }
        });
      })
      .catch(function () { whenReady(function () { finish("error"); }); });
  } catch (error) {
    finish("error");  // Whatever went wrong, the page's form is untouched and works.
  }
})();
