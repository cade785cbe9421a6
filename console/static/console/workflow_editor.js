// The workflow editor's few behaviours; the page works without them.
"use strict";

// A removal asks first: a node takes its transitions with it.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// The retry policy is a general node's: hide its fields for the other types.
document.addEventListener("DOMContentLoaded", () => {
  const type = document.querySelector("#node-form select[name=node_type]");
  const retry = document.querySelector("#node-form details.wf-retry");
  if (!type || !retry) {
    return;
  }
  const show = () => { retry.hidden = type.value !== "general"; };
  type.addEventListener("change", show);
  show();
});
