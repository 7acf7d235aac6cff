// Copy-paste examples of calling a deployment through the OpenAI-compatible API.

export const KEY_PLACEHOLDER = "YOUR_FORGELINE_API_KEY";

/** The API's base URL as a client outside the browser reaches it. */
export function apiBaseUrl(origin: string): string {
  return `${origin.replace(/\/+$/, "")}/v1`;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function curlSnippet(origin: string, model: string): string {
  const body = JSON.stringify({
    model,
    messages: [{ role: "user", content: "Hello! What can you do?" }],
    max_tokens: 128,
  });
  return [
    `export FORGELINE_API_KEY=${KEY_PLACEHOLDER}`,
    `curl ${apiBaseUrl(origin)}/chat/completions \\`,
    `  -H "Authorization: Bearer $FORGELINE_API_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d ${shellQuote(body)}`,
  ].join("\n");
}

export function pythonSnippet(origin: string, model: string): string {
  return [
    "# pip install openai",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${JSON.stringify(apiBaseUrl(origin))}, api_key=${JSON.stringify(KEY_PLACEHOLDER)})`,
    "reply = client.chat.completions.create(",
    `    model=${JSON.stringify(model)},`,
    '    messages=[{"role": "user", "content": "Hello! What can you do?"}],',
    "    max_tokens=128,",
    ")",
    "print(reply.choices[0].message.content)",
  ].join("\n");
}
