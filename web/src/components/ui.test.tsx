import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { Tabs } from "./ui";

function Harness() {
  const [value, setValue] = useState<"a" | "b">("a");
  return (
    <>
      <Tabs
        label="Choice"
        tabs={[
          { value: "a", label: "First" },
          { value: "b", label: "Second" },
        ]}
        value={value}
        onChange={setValue}
        panelId="panel"
      />
      <div id="panel" role="tabpanel" aria-labelledby={`panel-tab-${value}`}>
        {value}
      </div>
    </>
  );
}

describe("Tabs", () => {
  it("move with the arrow keys and label their panel", async () => {
    render(<Harness />);
    const first = screen.getByRole("tab", { name: "First" });
    expect(first).toHaveAttribute("tabindex", "0");
    expect(screen.getByRole("tab", { name: "Second" })).toHaveAttribute("tabindex", "-1");
    first.focus();
    await userEvent.keyboard("{ArrowRight}");
    expect(screen.getByRole("tab", { name: "Second" })).toHaveFocus();
    expect(screen.getByRole("tabpanel", { name: "Second" })).toHaveTextContent("b");
    await userEvent.keyboard("{ArrowRight}");
    expect(first).toHaveFocus();
  });
});
