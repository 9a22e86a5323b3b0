// Server-sent events read from a fetch response body: EventSource cannot POST.

// Calls onEvent(name, data) for each event; data is the parsed JSON of the data lines.
export async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let name = "message";
  let data = [];
  const dispatch = () => {
    if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    name = "message";
    data = [];
  };
  const take = (line) => {
    if (line === "") return dispatch();
    if (line.startsWith(":")) return undefined; // a comment, e.g. a keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let rest = colon < 0 ? "" : line.slice(colon + 1);
    if (rest.startsWith(" ")) rest = rest.slice(1);
    if (field === "event") name = rest;
    else if (field === "data") data.push(rest);
    return undefined;
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split(/\r?\n/);
    buffer = lines.pop();
    lines.forEach(take);
  }
  if (buffer) take(buffer);
  dispatch();
}

