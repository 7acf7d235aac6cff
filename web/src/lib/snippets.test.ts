import { describe, expect, it } from "vitest";
import { KEY_PLACEHOLDER, apiBaseUrl, curlSnippet, pythonSnippet } from "./snippets";

describe("snippets", () => {
  it("point at /v1 of this server", () => {
    expect(apiBaseUrl("https://forge.example.com/")).toBe("https://forge.example.com/v1");
  });

  it("curl: a runnable command with the model and a key placeholder", () => {
    const text = curlSnippet("http://127.0.0.1:8000", "tutor");
    expect(text).toContain("curl http://127.0.0.1:8000/v1/chat/completions");
    expect(text).toContain(`FORGELINE_API_KEY=${KEY_PLACEHOLDER}`);
    expect(text).toContain('"model":"tutor"');
  });

  it("curl: quotes a model name with a quote in it for the shell", () => {
    expect(curlSnippet("http://h", "it's")).toContain(`'\\''`);
  });

  it("python: the official openai client", () => {
    const text = pythonSnippet("http://127.0.0.1:8000", "tutor");
    expect(text).toContain('OpenAI(base_url="http://127.0.0.1:8000/v1"');
    expect(text).toContain('model="tutor"');
    expect(text).toContain("print(reply.choices[0].message.content)");
  });
});
