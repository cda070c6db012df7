/* Wicket portal: small progressive enhancements. Every page works without this file.
 * - Forms marked data-sending-label disable their submit button while sending (no double posts).
 * - File inputs with data-max-bytes / data-max-count warn about files that would be refused.
 * - A subject input with data-suggest-url refreshes "Articles that may help" as you type.
 * - Ctrl/Cmd+Enter in a reply box sends it.
 */
(function () {
  "use strict";

  function formatSize(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    var units = ["KB", "MB", "GB"], value = bytes / 1024, i = 0;
    while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    return (value >= 10 ? value.toFixed(0) : value.toFixed(1)) + " " + units[i];
  }

  function checkFiles(input) {
    var error = input.parentElement.querySelector(".file-error");
    var maxBytes = parseInt(input.dataset.maxBytes, 10), maxCount = parseInt(input.dataset.maxCount, 10);
    var problem = "";
    if (input.files.length > maxCount) {
      problem = "Attach at most " + maxCount + " files.";
    }
    Array.prototype.forEach.call(input.files, function (file) {
      if (!problem && file.size > maxBytes) {
        problem = file.name + " is " + formatSize(file.size) + "; each file may be at most " + formatSize(maxBytes) + ".";
      }
    });
    if (error) { error.textContent = problem; error.hidden = !problem; }
    input.setCustomValidity(problem);
  }

  function guardSubmit(form) {
    var button = form.querySelector("button[type=submit]");
    if (!button) return;
    var label = button.textContent;
    form.addEventListener("submit", function () {
      window.setTimeout(function () {
        button.disabled = true;
        button.textContent = form.dataset.sendingLabel;
      }, 0);
    });
    window.addEventListener("pageshow", function () {  /* coming back through history */
      button.disabled = false;
      button.textContent = label;
    });
  }

  function renderSuggestions(list, articles) {
    if (!articles.length) return;
    while (list.firstChild) list.removeChild(list.firstChild);
    articles.forEach(function (article) {
      var item = document.createElement("li"), link = document.createElement("a");
      link.href = article.url;
      link.textContent = article.title;
      item.appendChild(link);
      if (article.summary) {
        var summary = document.createElement("span");
        summary.className = "muted small";
        summary.textContent = article.summary;
        item.appendChild(summary);
      }
      list.appendChild(item);
    });
  }

  function suggestWhileTyping(input) {
    var list = document.getElementById("suggested-articles"), timer = null, last = "";
    if (!list || !window.fetch) return;
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var query = input.value.trim();
        if (query.length < 3 || query === last) return;
        last = query;
        fetch(input.dataset.suggestUrl + "?q=" + encodeURIComponent(query), { credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.json() : { articles: [] }; })
          .then(function (data) { renderSuggestions(list, data.articles || []); })
          .catch(function () { /* suggestions are a nicety; the page works without them */ });
      }, 300);
    });
  }

  function sendOnCtrlEnter(textarea) {
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && textarea.form) {
        event.preventDefault();
        textarea.form.requestSubmit();
      }
    });
  }

  document.querySelectorAll("form[data-sending-label]").forEach(guardSubmit);
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    input.addEventListener("change", function () { checkFiles(input); });
  });
  document.querySelectorAll("input[data-suggest-url]").forEach(suggestWhileTyping);
  document.querySelectorAll(".reply-card textarea").forEach(sendOnCtrlEnter);
})();
