import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../api/client";
import { SESSION, apiError, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { ApiKeys, CloudCredentials } from "./Settings";

const KEY = {
  id: "k1",
  name: "laptop",
  prefix: "flk_ab12",
  scopes: ["user"],
  created_at: "2026-01-01T00:00:00Z",
  last_used_at: null,
  revoked_at: null,
};

describe("API keys", () => {
  it("creates a key and shows it once, with a copy button", async () => {
    let keys: unknown[] = [];
    const fetch = mockFetch({
      "GET /api/v1/api-keys": () => json({ data: keys, count: keys.length }),
      "POST /api/v1/api-keys": ({ body }) => {
        expect(body).toEqual({ name: "laptop" });
        keys = [KEY];
        return json({ ...KEY, key: "flk_ab12_secretsecret" }, 201);
      },
    });
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    renderWithClient(<ApiKeys />, new ApiClient(memoryStore(SESSION), fetch));
    expect(await screen.findByText("You have no API keys yet.")).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Key name"), "laptop");
    await userEvent.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByTestId("new-api-key")).toHaveTextContent("flk_ab12_secretsecret");
    expect(screen.getByText(/will not be shown again/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Copy key" }));
    expect(writeText).toHaveBeenCalledWith("flk_ab12_secretsecret");
    expect(await screen.findByRole("button", { name: "Copied" })).toBeInTheDocument();
    // The list shows only the prefix.
    const row = (await screen.findByText("flk_ab12…")).closest("tr")!;
    expect(within(row).getByText("laptop")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "I have stored it" }));
    expect(screen.queryByTestId("new-api-key")).not.toBeInTheDocument();
  });

  it("revokes a key after asking", async () => {
    let revoked = false;
    const fetch = mockFetch({
      "GET /api/v1/api-keys": () => json({ data: revoked ? [] : [KEY], count: revoked ? 0 : 1 }),
      "DELETE /api/v1/api-keys/k1": () => {
        revoked = true;
        return new Response(null, { status: 204 });
      },
    });
    vi.spyOn(window, "confirm").mockReturnValue(true);
    renderWithClient(<ApiKeys />, new ApiClient(memoryStore(SESSION), fetch));
    await userEvent.click(await screen.findByRole("button", { name: "Revoke key laptop" }));
    expect(await screen.findByText("You have no API keys yet.")).toBeInTheDocument();
  });

  it("shows the API's sentence when creating fails", async () => {
    const fetch = mockFetch({
      "GET /api/v1/api-keys": json({ data: [], count: 0 }),
      "POST /api/v1/api-keys": apiError(422, "invalid_request", "name: String should have at most 100 characters"),
    });
    renderWithClient(<ApiKeys />, new ApiClient(memoryStore(SESSION), fetch));
    await userEvent.type(await screen.findByLabelText("Key name"), "x");
    await userEvent.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("name: String should have at most 100 characters");
  });
});

describe("cloud credentials", () => {
  it("sends AWS keys write-only and shows the dry run's refusal", async () => {
    const fetch = mockFetch({
      "GET /api/v1/credentials": json({ data: [], count: 0 }),
      "POST /api/v1/credentials": ({ body }) => {
        expect(body).toEqual({
          name: "lab",
          kind: "aws",
          location: "us-east-1",
          secret: { access_key_id: "AKIA1", secret_access_key: "s3cret" },
        });
        return apiError(422, "credential_check_failed", "AWS refused these keys: the access key does not exist.");
      },
    });
    renderWithClient(<CloudCredentials />, new ApiClient(memoryStore(SESSION), fetch));
    await userEvent.type(screen.getByLabelText("Name"), "lab");
    await userEvent.type(screen.getByLabelText("Region"), "us-east-1");
    await userEvent.type(screen.getByLabelText("Access key ID"), "AKIA1");
    await userEvent.type(screen.getByLabelText("Secret access key"), "s3cret");
    await userEvent.click(screen.getByRole("button", { name: /Check and save AWS account/ }));
    expect(await screen.findByRole("alert")).toHaveTextContent("AWS refused these keys");
  });
});
