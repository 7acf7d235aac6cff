import { fireEvent, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../api/client";
import { dataset } from "../test/fixtures";
import { SESSION, apiError, fakeXhr, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { DatasetDetail, Datasets } from "./Datasets";


const pages = (
  <Routes>
    <Route path="/datasets" element={<Datasets />} />
    <Route path="/datasets/:id" element={<DatasetDetail />} />
  </Routes>
);

describe("Datasets", () => {
  it("uploads a dropped file with a progress bar and opens what inspection found", async () => {
    const requests = fakeXhr(() => json(dataset({ state: "inspecting" }), 201));
    const fetch = mockFetch({
      "GET /api/v1/datasets": json({ data: [], count: 0 }),
      "GET /api/v1/datasets/ds1": json(dataset({ state: "inspecting" })),
    });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/datasets");
    expect(await screen.findByText("No datasets yet")).toBeInTheDocument();
    const file = new File(['{"messages": []}\n'], "support.jsonl", { type: "application/jsonl" });
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [file] } });
    expect(await screen.findByRole("progressbar", { name: /support.jsonl/ })).toBeInTheDocument();
    expect(await screen.findByText(/Checking your file row by row/)).toBeInTheDocument();
    expect(requests[0].url).toBe("/api/v1/datasets");
    expect(requests[0].headers.authorization).toBe("Bearer access-1");
    expect((requests[0].body.get("file") as File).name).toBe("support.jsonl");
  });

  it("says why an upload was refused, in words", async () => {
    fakeXhr(() => apiError(413, "file_too_large", "The file is larger than 200 MiB."));
    const fetch = mockFetch({ "GET /api/v1/datasets": json({ data: [], count: 0 }) });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/datasets");
    await userEvent.upload(await screen.findByLabelText("Choose a file"), new File(["x"], "big.csv"));
    expect(await screen.findByRole("alert")).toHaveTextContent("The file is larger than 200 MiB.");
  });

  it("shows the detected format to confirm, problems next to their rows, and token statistics", async () => {
    let current = dataset({
      state: "invalid",
      valid_rows: 2,
      problem_count: 1,
      problems: [{ line: 2, unit: "line", field: "messages", message: "The last message is not the assistant's.", fix: "End each conversation with the answer." }],
      token_stats: { rows: 3, total_tokens: 120, min: 20, mean: 40, p50: 38, p95: 60, max: 62, over_sequence_len: 0, sequence_len: 2048, tokenizer: "SmolLM2" },
    });
    const fetch = mockFetch({
      "GET /api/v1/datasets/ds1": () => json(current),
      "PATCH /api/v1/datasets/ds1": ({ body }) => {
        expect(body).toEqual({ format: "chat" });
        current = { ...current, format_confirmed: true };
        return json(current);
      },
      "GET /api/v1/datasets/ds1/preview": json({
        data: [
          { line: 1, unit: "line", data: { messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello!" }] }, error: null, eval: false },
          { line: 2, unit: "line", data: { messages: [{ role: "user", content: "Bye" }] }, error: null, eval: true },
        ],
        count: 2,
      }),
    });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/datasets/ds1");
    expect(await screen.findByText(/This looks like/)).toHaveTextContent("Chat: every row has a 'messages' list");
    const rows = await screen.findByRole("list", { name: "Rows" });
    const items = within(rows).getAllByRole("listitem");
    expect(items[0]).toHaveTextContent("Hello!");
    expect(items[0]).not.toHaveTextContent("not the assistant's");
    expect(within(items[1]).getByRole("note")).toHaveTextContent("The last message is not the assistant's.");
    expect(screen.getByRole("list", { name: "Problems found" })).toHaveTextContent("Line 2 (messages)");
    expect(screen.getByLabelText("Token statistics")).toHaveTextContent("120");
    await userEvent.click(screen.getByRole("button", { name: "Confirm format" }));
    expect(await screen.findByText("Format confirmed: Chat.")).toBeInTheDocument();
  });

  it("deletes a dataset after asking", async () => {
    let deleted = false;
    const fetch = mockFetch({
      "GET /api/v1/datasets": json({ data: [], count: 0 }),
      "GET /api/v1/datasets/ds1": json(dataset()),
      "GET /api/v1/datasets/ds1/preview": json({ data: [], count: 0 }),
      "DELETE /api/v1/datasets/ds1": () => {
        deleted = true;
        return json(null, 204);
      },
    });
    vi.spyOn(window, "confirm").mockReturnValue(true);
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/datasets/ds1");
    await userEvent.click(await screen.findByRole("button", { name: "Delete" }));
    expect(await screen.findByText("No datasets yet")).toBeInTheDocument();
    expect(deleted).toBe(true);
  });
});
