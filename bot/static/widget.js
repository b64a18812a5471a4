/*! supportbot chat widget. One tag on any page:
 *   <script src="https://bot.example.com/widget.js" data-title="Help" data-color="#0f766e" defer></script>
 * Options (data-*): title, color, api (defaults to this script's origin), sources ("off" hides
 * the sources of replies), greeting, subtitle, handoff-subtitle (the header's line while a
 * person has the conversation).
 * No dependencies. Styles live in a shadow root; every message is rendered as text nodes
 * (and, for web addresses in replies, <a> elements built node by node), never as HTML.
 */
(function () {
  "use strict";

  if (window.__supportbotWidget) return; // the tag was included twice
  window.__supportbotWidget = true;

  var script = document.currentScript || findOwnScript();
  if (!script) return;

  var SVG_NS = "http://www.w3.org/2000/svg";
  var ICONS = {
    chat: "M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6A.5.5 0 0 1 5 19.2V16h-.5A.5.5 0 0 1 4 15.5z",
    down: "M6 9l6 6 6-6",
    close: "M6 6l12 12M18 6L6 18",
    restart: "M4 12a8 8 0 1 0 2.4-5.7M4 4v4.5h4.5",
    send: "M4 12l16-8-6 16-2.5-6.5z",
    up: "M7 11v9H4v-9zM7 11l4-8c1.7 0 2.6 1.2 2.3 2.8L12.8 9H19a2 2 0 0 1 2 2.3l-1.2 7A2 2 0 0 1 17.8 20H7",
    downThumb: "M17 13V4h3v9zM17 13l-4 8c-1.7 0-2.6-1.2-2.3-2.8l.5-3.2H5a2 2 0 0 1-2-2.3l1.2-7A2 2 0 0 1 6.2 4H17",
    person: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0",
  };
  var FILLED = { chat: true, send: true };

  var scriptUrl = new URL(script.getAttribute("src") || "", window.location.href);
  var config = {
    api: trimSlash(script.dataset.api || scriptUrl.origin),
    title: script.dataset.title || "Support",
    subtitle: script.dataset.subtitle || "We usually answer right away",
    handoffSubtitle: script.dataset.handoffSubtitle || "A person from our team will reply here",
    color: script.dataset.color || "#2563eb",
    showSources: !/^(off|false|no|0)$/i.test(script.dataset.sources || "on"),
    greeting:
      script.dataset.greeting ||
      "Hi! Ask me about orders, delivery, returns or your account. I can also put you in touch with a person.",
  };
  var STORAGE_KEY = "supportbot:v1:" + config.api;
  var MAX_STORED_MESSAGES = 200;
  // The longest message the server takes, learned from it (GET /api/limits) when the chat
  // first opens: an operator may change it. Until it is known the server's own refusal
  // (422) is what the customer sees.
  var maxChars = 0;
  var limitsRequested = false;
  // The counter shows from this share of the limit on; below it, it would only distract.
  var COUNTER_FROM = 0.8;
  // What the counter last announced: "", "near" or "over". It speaks when this changes,
  // not at every key, so a screen reader is not interrupted while the customer types.
  var counterLevel = "";
  var POLL_MS = 10000;
  var REVEAL_MS = 30;
  // What the server's certainty of an answer means to a customer; the first word carries
  // the level, so it never rests on the meter's look alone.
  var CERTAINTY = {
    high: { bars: 3, text: "Confident: our team has answered this before" },
    medium: { bars: 2, text: "Fairly sure: based on similar questions our team answered" },
    low: { bars: 1, text: "Not completely sure: a person can check" },
  };
  // Addresses in text: broken only at the places a reader expects (after a slash, before a
  // dot or a query), never mid-word, and made links in what the bot and operators say; see
  // setText. Only http(s): a "javascript:" or "data:" address stays text.
  var URL_PATTERN = /https?:\/\/[^\s<>"']+/gi;
  // Punctuation that ends a sentence around an address rather than the address itself.
  var TRAILING_PUNCTUATION = ".,:;!?)]}";
  // Who may hand the customer a link: the bot, its greeting and operators. The customer's
  // own words stay as typed.
  var LINKED_ROLES = { bot: true, greeting: true, agent: true };

  var state = loadState();
  var busy = false;
  // The text in the box is over the server's limit: sending is refused until it is shortened.
  var overLimit = false;
  var pollTimer = null;
  var followLog = true;
  var ui = null;

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mount);
  } else {
    mount();
  }

  // -- state ---------------------------------------------------------------------------------
  function emptyState() {
    return { conversationId: null, messages: [], open: false, handedOff: false, seenAgentTurns: [] };
  }

  function loadState() {
    try {
      var raw = window.localStorage.getItem(STORAGE_KEY);
      var data = raw ? JSON.parse(raw) : null;
      if (data && Array.isArray(data.messages)) {
        var fresh = emptyState();
        for (var key in fresh) if (!(key in data)) data[key] = fresh[key];
        return data;
      }
    } catch (e) {
      /* storage disabled or corrupt: start afresh */
    }
    return emptyState();
  }

  function saveState() {
    var stored = state.messages.filter(function (m) { return !m.pending; }).slice(-MAX_STORED_MESSAGES);
    var snapshot = {
      conversationId: state.conversationId,
      messages: stored,
      open: state.open,
      handedOff: state.handedOff,
      seenAgentTurns: state.seenAgentTurns.slice(-MAX_STORED_MESSAGES),
    };
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify(snapshot, withoutElements));
    } catch (e) {
      /* private mode or full: the conversation still works, it just won't survive a reload */
    }
  }

  function withoutElements(key, value) {
    return key === "element" || key === "textElement" || key === "metaElement" || key === "reveal" ? undefined : value;
  }

  // -- building the widget -------------------------------------------------------------------
  function mount() {
    var host = document.createElement("div");
    host.setAttribute("data-supportbot", "");
    var shadow = host.attachShadow({ mode: "open" });

    var root = h("div", { class: "sb-root" });
    root.style.visibility = "hidden"; // until the stylesheet is in
    root.style.setProperty("--sb-accent", safeColor(config.color));
    root.style.setProperty("--sb-on-accent", textColorOn(config.color));

    var stylesheet = h("link", { rel: "stylesheet", href: config.api + "/widget.css" });
    stylesheet.addEventListener("load", reveal);
    stylesheet.addEventListener("error", reveal);
    setTimeout(reveal, 3000);
    function reveal() { root.style.visibility = ""; }

    var titleId = "sb-title";
    var launcher = h(
      "button",
      {
        class: "sb-launcher",
        type: "button",
        "aria-label": "Open chat: " + config.title,
        "aria-haspopup": "dialog",
        "aria-expanded": "false",
        "aria-controls": "sb-panel",
      },
      [icon("chat", "sb-icon-chat"), icon("down", "sb-icon-down")]
    );
    var closeButton = h(
      "button",
      { class: "sb-icon-button", type: "button", "aria-label": "Close chat", title: "Close" },
      [icon("close")]
    );
    var restartButton = h(
      "button",
      { class: "sb-icon-button", type: "button", "aria-label": "Start a new conversation", title: "New conversation" },
      [icon("restart")]
    );
    var log = h("div", { class: "sb-log", role: "log", "aria-live": "polite", "aria-label": "Conversation", tabindex: "0" });
    var status = h("div", { class: "sb-status", role: "status", "aria-live": "assertive" });
    // No maxlength: it cut pasted text at the limit without a word, and a customer who
    // pasted a long error log lost its end unknowingly. The counter says what is over.
    var input = h("textarea", {
      class: "sb-input",
      rows: "1",
      placeholder: "Type your message…",
      "aria-label": "Your message",
      "aria-describedby": "sb-counter",
    });
    var counter = h("p", { class: "sb-counter", id: "sb-counter", hidden: "" });
    var counterAnnouncer = h("p", { class: "sb-visually-hidden", "aria-live": "polite" });
    var send = h("button", { class: "sb-send", type: "submit", "aria-label": "Send message" }, [icon("send")]);
    var form = h("form", { class: "sb-composer", novalidate: "" }, [input, send]);
    var human = h("button", { class: "sb-human", type: "button" }, [icon("person"), h("span", {}, "Talk to a human")]);
    var subtitle = h("p", { class: "sb-subtitle" }, config.subtitle);
    var panel = h(
      "section",
      { class: "sb-panel", id: "sb-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": titleId, hidden: "" },
      [
        h("header", { class: "sb-header" }, [
          h("div", { class: "sb-header-text" }, [
            h("h2", { class: "sb-title", id: titleId }, config.title),
            subtitle,
          ]),
          restartButton,
          closeButton,
        ]),
        log,
        status,
        form,
        counter,
        counterAnnouncer,
        h("div", { class: "sb-footer" }, [human, h("span", { class: "sb-footer-note" }, "Powered by supportbot")]),
      ]
    );

    root.appendChild(panel);
    root.appendChild(launcher);
    shadow.appendChild(stylesheet);
    shadow.appendChild(root);
    document.body.appendChild(host);

    ui = { host: host, shadow: shadow, root: root, launcher: launcher, panel: panel, log: log, status: status, input: input, send: send, human: human, subtitle: subtitle, counter: counter, counterAnnouncer: counterAnnouncer };

    launcher.addEventListener("click", function () { setOpen(panel.hidden, true); });
    closeButton.addEventListener("click", function () { setOpen(false, true); });
    restartButton.addEventListener("click", restart);
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.preventDefault();
        setOpen(false, true);
      }
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    });
    input.addEventListener("input", function () {
      autosize();
      updateCounter();
    });
    log.addEventListener("scroll", trackLogScroll, { passive: true });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      submit();
    });
    human.addEventListener("click", askForHuman);
    document.addEventListener("visibilitychange", schedulePoll);

    renderAll();
    showWhoAnswers();
    if (state.open) setOpen(true, false);
  }

  function setOpen(open, moveFocus) {
    ui.panel.hidden = !open;
    ui.launcher.setAttribute("aria-expanded", String(open));
    ui.launcher.setAttribute("aria-label", (open ? "Close chat: " : "Open chat: ") + config.title);
    state.open = open;
    saveState();
    if (open) {
      loadLimits();
      scrollToEnd(true);
      if (moveFocus) ui.input.focus();
      pollAgentReplies();
    } else if (moveFocus) {
      ui.launcher.focus();
    }
    schedulePoll();
  }

  function restart() {
    stopPoll();
    state = emptyState();
    state.open = true;
    saveState();
    setStatus("");
    renderAll();
    showWhoAnswers();
    ui.input.focus();
  }

  // -- rendering -----------------------------------------------------------------------------
  function renderAll() {
    clear(ui.log);
    ui.log.appendChild(renderMessage({ role: "greeting", text: config.greeting }));
    state.messages.forEach(function (message) { ui.log.appendChild(renderMessage(message)); });
    scrollToEnd(true);
  }

  function renderMessage(message) {
    var element = h("div", { class: "sb-msg sb-msg-" + message.role + (message.error ? " sb-msg-error" : "") });
    var who = { customer: "You", bot: config.title, greeting: config.title, agent: "Support team", note: "" }[message.role];
    if (message.role === "agent") element.appendChild(h("p", { class: "sb-author" }, "Support team"));
    else if (who) element.appendChild(h("span", { class: "sb-visually-hidden" }, who + ":"));
    var text = h("p", { class: "sb-text" });
    element.appendChild(text);
    message.element = element;
    message.textElement = text;
    if (message.pending && !message.text) {
      text.hidden = true;
      element.appendChild(typingIndicator());
    } else {
      setText(text, message.text, linksFor(message));
    }
    if (message.role === "bot" && message.turnId && !message.pending) renderMeta(message);
    return element;
  }

  /**
   * How ``setText`` may make links of a message's addresses: not at all for the customer's
   * own words; while a reply still streams in, not for an address that reaches the end of
   * what is shown, which may be cut short ("https://help.example/artic"): a link to that
   * would go nowhere if clicked before the next words come.
   */
  function linksFor(message) {
    if (!LINKED_ROLES[message.role]) return "none";
    return message.pending ? "complete" : "all";
  }

  /**
   * ``text`` as text nodes, with a line-break opportunity (<wbr>) at the seams of addresses;
   * ``links`` ("all", "complete" or "none", see linksFor) says which addresses become <a>
   * elements. Built node by node, never parsed as HTML: the text may come from anywhere.
   * Called again on each streamed step, so it rebuilds the whole bubble from the text.
   */
  function setText(element, text, links) {
    clear(element);
    var at = 0;
    var match;
    URL_PATTERN.lastIndex = 0;
    while ((match = URL_PATTERN.exec(text))) {
      var address = withoutTrailingPunctuation(match[0]);
      var end = match.index + address.length;
      element.appendChild(document.createTextNode(text.slice(at, match.index)));
      var linked = links === "all" || (links === "complete" && match.index + match[0].length < text.length);
      var parent = linked && isWebLink(address) ? element.appendChild(linkTo(address)) : element;
      urlParts(address).forEach(function (part, index) {
        if (index) parent.appendChild(document.createElement("wbr"));
        parent.appendChild(document.createTextNode(part));
      });
      at = end;
      URL_PATTERN.lastIndex = end; // the punctuation left out is read as text again
    }
    element.appendChild(document.createTextNode(text.slice(at)));
  }

  function linkTo(address) {
    // nofollow: a reply is not the business vouching for a page to search engines.
    return h("a", { href: address, target: "_blank", rel: "noopener noreferrer nofollow" });
  }

  /**
   * "https://example.com/a." is "https://example.com/a" and a full stop; a closing bracket
   * is the address's own only where it closes one the address opened, so both
   * "(see https://example.com/a)" and "https://en.wikipedia.org/wiki/Boot_(footwear)" read
   * right.
   */
  function withoutTrailingPunctuation(address) {
    var closers = { ")": "(", "]": "[", "}": "{" };
    while (address.length) {
      var last = address.charAt(address.length - 1);
      if (TRAILING_PUNCTUATION.indexOf(last) < 0) break;
      var opener = closers[last];
      if (opener && count(address, opener) >= count(address, last)) break;
      address = address.slice(0, -1);
    }
    return address;
  }

  function count(text, character) {
    return text.split(character).length - 1;
  }

  /** A link cut after "//" and "/", before ".", "?", "#", "&" and "=": where a broken
   * address still reads as one (the Chicago Manual of Style's rule). */
  function urlParts(url) {
    var parts = [];
    var start = 0;
    for (var i = 1; i < url.length; i++) {
      var c = url.charAt(i);
      if ((url.charAt(i - 1) === "/" && c !== "/") || ".?#&=".indexOf(c) >= 0) {
        parts.push(url.slice(start, i));
        start = i;
      }
    }
    parts.push(url.slice(start));
    return parts;
  }

  function typingIndicator() {
    return h("div", { class: "sb-typing", "aria-label": "Assistant is typing" }, [h("span"), h("span"), h("span")]);
  }

  function renderMeta(message) {
    var level = !message.handoff && CERTAINTY[message.certainty];
    if (level) message.element.appendChild(certaintyLine(message.certainty, level));
    var meta = h("div", { class: "sb-meta" });
    if (!message.handoff) {
      var up = rateButton(message, "up", "Helpful", "up");
      var down = rateButton(message, "down", "Not helpful", "downThumb");
      meta.appendChild(h("div", { class: "sb-rating", role: "group", "aria-label": "Was this reply helpful?" }, [up, down]));
    }
    var sources = config.showSources ? sourceItems(message.sources || []) : [];
    if (sources.length) meta.appendChild(renderSources(sources));
    if (meta.childNodes.length) message.element.appendChild(meta);
    message.metaElement = meta;
  }

  function certaintyLine(name, level) {
    var bars = [1, 2, 3].map(function (bar) {
      return h("span", { class: bar <= level.bars ? "sb-bar sb-bar-on" : "sb-bar" });
    });
    return h("p", { class: "sb-certainty", "data-certainty": name }, [
      h("span", { class: "sb-meter", "aria-hidden": "true" }, bars),
      h("span", {}, level.text),
    ]);
  }

  function rateButton(message, value, label, iconName) {
    var button = h(
      "button",
      { class: "sb-rate", type: "button", "aria-label": label, title: label, "aria-pressed": String(message.rating === value) },
      [icon(iconName)]
    );
    button.dataset.rating = value;
    button.addEventListener("click", function () { rate(message, value, null); });
    return button;
  }

  function renderSources(items) {
    var list = h("ul");
    items.forEach(function (item) {
      if (item.link) {
        list.appendChild(h("li", {}, [
          h("a", { href: item.link, title: item.link, target: "_blank", rel: "noopener noreferrer" }, shortLink(item.link)),
        ]));
      } else {
        list.appendChild(h("li", { class: "sb-source-text" }, item.text));
      }
    });
    return h("details", { class: "sb-sources" }, [h("summary", {}, "Sources (" + items.length + ")"), list]);
  }

  /**
   * One item per distinct link; a source without a link shows the start of its answer,
   * which the server sends only where the reply does not already say it. A source with
   * neither is not listed: "A past answer from our team", or the copied reply once more,
   * told the customer nothing the reply and its certainty line had not.
   */
  function sourceItems(sources) {
    var items = [];
    var seen = Object.create(null); // an excerpt may be any text, "constructor" too
    sources.forEach(function (source) {
      var links = (source.links || []).filter(isWebLink);
      links.forEach(function (link) {
        if (seen[link]) return;
        seen[link] = true;
        items.push({ link: link });
      });
      if (!links.length && source.excerpt && !seen[source.excerpt]) {
        seen[source.excerpt] = true;
        items.push({ text: source.excerpt });
      }
    });
    return items;
  }

  function addMessage(message) {
    state.messages.push(message);
    ui.log.appendChild(renderMessage(message));
    scrollToEnd(message.role === "customer");
    return message;
  }

  function removeMessage(message) {
    var index = state.messages.indexOf(message);
    if (index >= 0) state.messages.splice(index, 1);
    if (message.element && message.element.parentNode) message.element.parentNode.removeChild(message.element);
  }

  function updateText(message, visible) {
    var text = visible === undefined ? message.text : visible;
    var typing = message.element.querySelector(".sb-typing");
    if (text) {
      if (typing) typing.parentNode.removeChild(typing);
      message.textElement.hidden = false;
      setText(message.textElement, text, linksFor(message));
    } else {
      message.textElement.hidden = true;
      if (!typing) message.element.appendChild(typingIndicator());
    }
    scrollToEnd(false);
  }

  function finishBotMessage(message, reply) {
    stopReveal(message);
    message.pending = false;
    message.text = reply.reply;
    message.turnId = reply.turn_id;
    message.handoff = !!reply.handoff;
    message.certainty = CERTAINTY[reply.certainty] ? reply.certainty : null;
    message.sources = Array.isArray(reply.sources) ? reply.sources : [];
    updateText(message);
    renderMeta(message);
    if (message.handoff) setHandedOff(true);
    scrollToEnd(false);
    saveState();
  }

  function addNote(text) {
    var last = state.messages[state.messages.length - 1];
    if (last && last.role === "note" && last.text === text) return;
    addMessage({ role: "note", text: text });
  }

  function setStatus(text) {
    ui.status.textContent = text || "";
  }

  function setBusy(value) {
    busy = value;
    updateSendButton();
  }

  /**
   * The send button is unavailable while a reply comes in and while the message is over the
   * limit. aria-disabled rather than disabled: the button stays reachable with Tab, and over
   * the limit it is described by the counter, so a customer who reaches it hears why.
   */
  function updateSendButton() {
    var send = ui.send;
    send.setAttribute("aria-disabled", String(busy || overLimit));
    send.classList.toggle("sb-send-over", overLimit);
    if (overLimit) {
      send.setAttribute("aria-describedby", "sb-counter");
      send.title = "Shorten your message to send it";
    } else {
      send.removeAttribute("aria-describedby");
      send.removeAttribute("title");
    }
  }

  /** Follow new text, unless the visitor has scrolled up to read something earlier. */
  function scrollToEnd(force) {
    if (force || followLog) {
      ui.log.scrollTop = ui.log.scrollHeight;
      followLog = true;
    }
  }

  function trackLogScroll() {
    var log = ui.log;
    followLog = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  function autosize() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 120) + "px";
  }

  // -- the message's length against the server's limit -----------------------------------
  async function loadLimits() {
    if (limitsRequested) return;
    limitsRequested = true;
    try {
      var response = await api("GET", "/api/limits");
      var limits = response.ok ? await response.json() : null;
      var limit = limits && limits.max_message_chars;
      if (typeof limit === "number" && limit > 0) {
        maxChars = limit;
        updateCounter();
        return;
      }
    } catch (e) {
      /* offline or an older server: its 422 still explains a message that is too long */
    }
    limitsRequested = false; // try again the next time the chat opens
  }

  /** Characters as the server counts them: code points, without surrounding whitespace
   * (an emoji is one, not the two UTF-16 units of .length). */
  function charactersOf(text) {
    return Array.from(text.trim()).length;
  }

  function charactersOver() {
    return maxChars ? charactersOf(ui.input.value) - maxChars : -Infinity;
  }

  function plural(count, word) {
    return count + " " + word + (count === 1 ? "" : "s");
  }

  function updateCounter() {
    var counter = ui.counter;
    var used = charactersOf(ui.input.value);
    var level = "";
    if (maxChars && used > maxChars) level = "over";
    else if (maxChars && used >= maxChars * COUNTER_FROM) level = "near";
    counter.hidden = level === "";
    counter.classList.toggle("sb-counter-over", level === "over");
    if (level === "over") {
      ui.input.setAttribute("aria-invalid", "true");
      counter.textContent = plural(used - maxChars, "character") + " over the limit of " + maxChars + ". Please shorten your message to send it.";
    } else {
      ui.input.removeAttribute("aria-invalid");
      counter.textContent = level === "near" ? plural(maxChars - used, "character") + " left" : "";
    }
    if (level !== counterLevel) {
      // Said once on reaching a level (polite: after what is being read), then quiet;
      // the counter itself stays readable through the box's description.
      if (level === "over") announceOverLimit();
      else if (level === "near") ui.counterAnnouncer.textContent = counterLevel === "over" ? "Your message fits again: " + counter.textContent + "." : counter.textContent + ".";
      else ui.counterAnnouncer.textContent = "";
      counterLevel = level;
    }
    if (overLimit !== (level === "over")) {
      overLimit = level === "over";
      updateSendButton();
    }
  }

  function announceOverLimit() {
    ui.counterAnnouncer.textContent = "Your message is over the limit of " + maxChars + " characters.";
  }

  // -- talking to the server -----------------------------------------------------------------
  function submit() {
    if (busy) return;
    var text = ui.input.value.trim();
    if (!text) return;
    if (charactersOver() > 0) {
      // Nothing is cut: the customer chooses what to leave out. The counter under the box
      // already says by how much; a second red line saying it again (the status) only
      // crowded the panel. A screen reader hears it once more, as a send was tried: emptied
      // first and refilled a moment later, as the same text set again is not read again.
      ui.counterAnnouncer.textContent = "";
      setTimeout(function () { if (overLimit) announceOverLimit(); }, 50);
      ui.input.focus();
      return;
    }
    ui.input.value = "";
    autosize();
    updateCounter();
    sendMessage(text);
  }

  async function sendMessage(text) {
    setBusy(true);
    setStatus("");
    var customer = addMessage({ role: "customer", text: text });
    saveState();
    var bot = null;
    try {
      var conversationId = await ensureConversation();
      bot = addMessage({ role: "bot", text: "", pending: true });
      var response = await postMessage(conversationId, text);
      if (response.status === 404) {
        // The server no longer knows this conversation (e.g. its data was reset).
        state.conversationId = null;
        conversationId = await ensureConversation();
        response = await postMessage(conversationId, text);
      }
      if (!response.ok) {
        removeMessage(bot);
        await handleFailure(response, customer, text);
        return;
      }
      if ((response.headers.get("Content-Type") || "").indexOf("text/event-stream") === 0) {
        await readEvents(response, bot);
      } else {
        finishBotMessage(bot, await response.json());
      }
      if (!bot.handoff && state.handedOff && !bot.error) setHandedOff(false);
    } catch (error) {
      if (bot && bot.text) {
        failBotMessage(bot, "The connection dropped before the reply was finished. Please try again.");
      } else {
        if (bot) removeMessage(bot);
        removeMessage(customer);
        restoreInput(text);
        setStatus(error && error.status ? error.message : "We can't reach support right now. Check your connection and try again.");
      }
    } finally {
      setBusy(false);
      saveState();
    }
  }

  // A new conversation refused with 429 (too many starting at once: a flood from other
  // addresses, or a busy office behind one) is tried again after the server's Retry-After,
  // a few times, instead of handing the customer an error for what others did.
  var START_RETRIES = 4;
  var START_WAIT_MAX_S = 30;

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  async function ensureConversation() {
    if (state.conversationId) return state.conversationId;
    var response = await api("POST", "/api/conversations", {});
    for (var attempt = 0; response.status === 429 && attempt < START_RETRIES; attempt++) {
      var wait = parseInt(response.headers.get("Retry-After") || "", 10);
      wait = Math.min(START_WAIT_MAX_S, wait > 0 ? wait : 2);
      setStatus("Lots of people are writing to us right now. Connecting you in " + wait + " second" + (wait === 1 ? "" : "s") + "\u2026");
      await sleep(wait * 1000);
      response = await api("POST", "/api/conversations", {});
    }
    if (!response.ok) throw await failureOf(response);
    setStatus("");
    var data = await response.json();
    state.conversationId = data.conversation_id;
    state.handedOff = false;
    state.seenAgentTurns = [];
    saveState();
    return state.conversationId;
  }

  function postMessage(conversationId, text) {
    return api("POST", "/api/conversations/" + encodeURIComponent(conversationId) + "/messages", { text: text }, "text/event-stream");
  }

  function api(method, path, body, accept) {
    var init = { method: method, headers: { Accept: accept || "application/json" }, mode: "cors", credentials: "omit" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(config.api + path, init);
  }

  async function readEvents(response, bot) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var finished = false;
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
      var end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        var event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event && event.name === "done") await revealed(bot);
        if (event && handleEvent(event, bot)) finished = true;
      }
    }
    if (!finished) failBotMessage(bot, "The reply was interrupted. Please try again.");
  }

  function parseEvent(block) {
    var name = "message";
    var data = [];
    block.split("\n").forEach(function (line) {
      if (!line || line.charAt(0) === ":") return;
      var colon = line.indexOf(":");
      var field = colon < 0 ? line : line.slice(0, colon);
      var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    });
    if (!data.length) return null;
    try {
      return { name: name, data: JSON.parse(data.join("\n")) };
    } catch (e) {
      return null;
    }
  }

  /** Apply one server-sent event to the reply; true once the reply is final. */
  function handleEvent(event, bot) {
    var data = event.data || {};
    if (event.name === "delta") {
      bot.text += String(data.text || "");
      reveal(bot);
    } else if (event.name === "retract") {
      stopReveal(bot);
      bot.text = "";
      updateText(bot);
    } else if (event.name === "done") {
      finishBotMessage(bot, data);
      return true;
    } else if (event.name === "error") {
      failBotMessage(bot, data.message || "Something went wrong. Please try again.");
      return true;
    }
    return false;
  }

  // -- revealing streamed text --------------------------------------------------------------
  // A copied answer comes as a burst of word-sized deltas within a few milliseconds: shown
  // as they arrive, the reply would appear all at once. The words are revealed a few at a
  // time instead, more per step the more are waiting, so a long reply still shows within
  // about half a second and a slow generated stream shows each word as it comes.

  function reveal(message) {
    var state = message.reveal || (message.reveal = { shown: 0, timer: null, waiting: [] });
    if (state.timer === null) state.timer = setTimeout(function () { revealStep(message); }, 0);
  }

  function revealStep(message) {
    var state = message.reveal;
    state.timer = null;
    var rest = message.text.slice(state.shown);
    var all = document.visibilityState === "hidden" || prefersReducedMotion();
    var words = (rest.match(/\S+/g) || []).length;
    var take = all ? words : Math.max(2, Math.ceil(words / 6));
    var word = /\s*\S+/g;
    for (var i = 0; i < take && word.exec(rest); i++);
    var shown = take >= words ? rest.length : word.lastIndex;
    state.shown += shown;
    updateText(message, message.text.slice(0, state.shown));
    if (state.shown < message.text.length) {
      state.timer = setTimeout(function () { revealStep(message); }, REVEAL_MS);
    } else {
      state.waiting.splice(0).forEach(function (resolve) { resolve(); });
    }
  }

  /** Resolves once every word received so far is on screen. */
  function revealed(message) {
    var state = message.reveal;
    if (!state || (state.timer === null && state.shown >= message.text.length)) return Promise.resolve();
    return new Promise(function (resolve) { state.waiting.push(resolve); });
  }

  function stopReveal(message) {
    var state = message.reveal;
    if (!state) return;
    if (state.timer !== null) clearTimeout(state.timer);
    state.timer = null;
    state.shown = 0;
    state.waiting.splice(0).forEach(function (resolve) { resolve(); });
  }

  function prefersReducedMotion() {
    return !!(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);
  }

  function failBotMessage(bot, text) {
    stopReveal(bot);
    bot.pending = false;
    bot.error = true;
    bot.text = text;
    bot.element.classList.add("sb-msg-error");
    updateText(bot);
    saveState();
  }

  async function handleFailure(response, customer, text) {
    var failure = await failureOf(response);
    if (response.status === 409) {
      // The message was stored for the team; the server's text says whether a person has
      // taken the conversation over or one is still to be found.
      addNote(failure.message);
      setHandedOff(true);
      return;
    }
    if (response.status >= 500 && failure.code !== "storage_unavailable") {
      setStatus(failure.message);
      return;
    }
    removeMessage(customer);
    restoreInput(text);
    setStatus(failure.message);
  }

  async function failureOf(response) {
    var body = null;
    try {
      body = await response.json();
    } catch (e) {
      /* not JSON (a proxy's error page) */
    }
    var message = body && typeof body.message === "string" ? body.message : "Something went wrong. Please try again.";
    var code = body && typeof body.error === "string" ? body.error : "";
    if (response.status === 429) {
      var wait = parseInt(response.headers.get("Retry-After") || "", 10);
      message = "You're sending messages a little fast. Please wait " + (wait > 0 ? wait + " second" + (wait === 1 ? "" : "s") : "a moment") + " and try again.";
    } else if (response.status === 413) {
      message = "That message is too long. Please shorten it.";
    } else if (code === "storage_unavailable") {
      // Nothing of this message was stored: it goes back into the box to be sent again.
      message = "We can't save new messages right now, so this one was not sent. Please try again in a few minutes; nothing you sent before is lost.";
    } else if (response.status === 503) {
      message = "The assistant can't answer right now. Please try again in a moment, or ask for a human.";
    }
    var error = new Error(message);
    error.status = response.status;
    error.code = code;
    error.message = message;
    return error;
  }

  function restoreInput(text) {
    if (!ui.input.value) ui.input.value = text;
    autosize();
    updateCounter();
    ui.input.focus();
  }

  async function rate(message, value, comment) {
    try {
      var response = await api("POST", "/api/turns/" + encodeURIComponent(message.turnId) + "/rating", {
        rating: value,
        comment: comment,
      });
      if (!response.ok) throw await failureOf(response);
      message.rating = value;
      message.element.querySelectorAll(".sb-rate").forEach(function (button) {
        button.setAttribute("aria-pressed", String(button.dataset.rating === value));
      });
      var form = message.element.querySelector(".sb-feedback");
      if (form) form.parentNode.removeChild(form);
      if (value === "down" && comment === null) showFeedbackForm(message);
      setStatus(comment ? "Thanks for your feedback." : "");
      saveState();
    } catch (error) {
      setStatus(error.status ? error.message : "We couldn't save your rating. Check your connection and try again.");
    }
  }

  function showFeedbackForm(message) {
    var field = h("input", { type: "text", maxlength: "500", placeholder: "What was wrong? (optional)", "aria-label": "What was wrong with this reply? (optional)" });
    var button = h("button", { class: "sb-small-button", type: "submit" }, "Send");
    var form = h("form", { class: "sb-feedback" }, [field, button]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var comment = field.value.trim();
      if (comment) rate(message, "down", comment);
      else form.parentNode.removeChild(form);
    });
    message.metaElement.appendChild(form);
    field.focus();
  }

  async function askForHuman() {
    if (busy || state.handedOff) return;
    setBusy(true);
    setStatus("");
    try {
      var conversationId = await ensureConversation();
      var response = await api("POST", "/api/conversations/" + encodeURIComponent(conversationId) + "/handoff", {});
      if (response.status === 409) {
        addNote((await failureOf(response)).message);
        setHandedOff(true);
        return;
      }
      if (!response.ok) throw await failureOf(response);
      var bot = addMessage({ role: "bot", text: "", pending: true });
      finishBotMessage(bot, await response.json());
      setHandedOff(true);
    } catch (error) {
      setStatus(error.status ? error.message : "We can't reach support right now. Check your connection and try again.");
    } finally {
      setBusy(false);
      saveState();
    }
  }

  function setHandedOff(value) {
    state.handedOff = value;
    showWhoAnswers();
    saveState();
    schedulePoll();
  }

  /** The header's line and the hand-off button say who answers next: while a person has the
   * conversation, "We usually answer right away" was not true. */
  function showWhoAnswers() {
    ui.human.setAttribute("aria-disabled", String(!!state.handedOff));
    ui.human.lastChild.textContent = state.handedOff ? "A person will reply here" : "Talk to a human";
    ui.subtitle.textContent = state.handedOff ? config.handoffSubtitle : config.subtitle;
  }

  // -- operator replies, after a hand-off ------------------------------------------------------
  function schedulePoll() {
    stopPoll();
    if (state.handedOff && state.open && state.conversationId && document.visibilityState !== "hidden") {
      pollTimer = setTimeout(function () {
        pollAgentReplies().then(schedulePoll);
      }, POLL_MS);
    }
  }

  function stopPoll() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function pollAgentReplies() {
    if (!state.handedOff || !state.conversationId) return;
    var conversationId = state.conversationId;
    try {
      var response = await api("GET", "/api/conversations/" + encodeURIComponent(conversationId) + "/turns");
      if (!response.ok) return;
      var data = await response.json();
      if (state.conversationId !== conversationId) return; // a new conversation was started meanwhile
      (data.turns || []).forEach(function (turn) {
        if (turn.role !== "agent" || state.seenAgentTurns.indexOf(turn.turn_id) >= 0) return;
        state.seenAgentTurns.push(turn.turn_id);
        addMessage({ role: "agent", text: String(turn.text || "") });
      });
      saveState();
      // An operator handed the conversation back (or closed it): the bot answers the next
      // message, and the header and the button say so without waiting for one.
      if (state.handedOff && (data.state === "bot" || data.state === "closed")) setHandedOff(false);
    } catch (e) {
      /* offline for a moment; the next poll tries again */
    }
  }

  // -- helpers -------------------------------------------------------------------------------
  function h(tag, attributes, children) {
    var element = document.createElement(tag);
    for (var name in attributes || {}) element.setAttribute(name, attributes[name]);
    if (typeof children === "string") element.textContent = children;
    else (children || []).forEach(function (child) { element.appendChild(child); });
    return element;
  }

  function icon(name, extraClass) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (extraClass) svg.setAttribute("class", extraClass);
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", ICONS[name]);
    if (FILLED[name]) {
      path.setAttribute("fill", "currentColor");
    } else {
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "2");
      path.setAttribute("stroke-linecap", "round");
      path.setAttribute("stroke-linejoin", "round");
    }
    svg.appendChild(path);
    return svg;
  }

  function clear(element) {
    while (element.firstChild) element.removeChild(element.firstChild);
  }

  function trimSlash(url) {
    return String(url).replace(/\/+$/, "");
  }

  function isWebLink(link) {
    try {
      var url = new URL(link);
      return url.protocol === "https:" || url.protocol === "http:";
    } catch (e) {
      return false;
    }
  }

  /** "help.example.com › late-or-lost-packages": the site and the page, the rest in the title. */
  function shortLink(link) {
    var url = new URL(link);
    var host = url.hostname.replace(/^www\./, "") + (url.port ? ":" + url.port : "");
    var segments = url.pathname.split("/").filter(Boolean);
    if (!segments.length) return host;
    var page = segments[segments.length - 1];
    try {
      page = decodeURIComponent(page);
    } catch (e) {
      /* not valid percent-encoding: shown as it is */
    }
    return host + " \u203a " + page;
  }

  function safeColor(color) {
    return window.CSS && CSS.supports && CSS.supports("color", color) ? color : "#2563eb";
  }

  /** White or near-black text, whichever reads better on the accent colour. */
  function textColorOn(color) {
    var probe = document.createElement("span");
    probe.style.color = safeColor(color);
    probe.style.display = "none";
    document.documentElement.appendChild(probe);
    var rgb = (getComputedStyle(probe).color.match(/[\d.]+/g) || [0, 0, 0]).map(Number);
    probe.parentNode.removeChild(probe);
    var channel = function (value) {
      value /= 255;
      return value <= 0.03928 ? value / 12.92 : Math.pow((value + 0.055) / 1.055, 2.4);
    };
    var luminance = 0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2]);
    var dark = 0.0098; // luminance of #111827
    var onWhite = 1.05 / (luminance + 0.05);
    var onDark = (luminance + 0.05) / (dark + 0.05);
    return onDark > onWhite ? "#111827" : "#ffffff";
  }

  function findOwnScript() {
    var scripts = document.querySelectorAll("script[src]");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(scripts[i].getAttribute("src"))) return scripts[i];
    }
    return null;
  }
})();
