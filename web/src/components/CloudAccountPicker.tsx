import { useId } from "react";
import { Link } from "react-router-dom";
import type { Credential } from "../api/types";

/** The cloud account a job or a deployment runs in, or where to add one when none is saved. */
export function CloudAccountPicker({
  cloud,
  accounts,
  value,
  onChange,
}: {
  cloud: string;
  accounts: Credential[];
  value: string;
  onChange: (id: string) => void;
}) {
  const id = useId();
  if (accounts.length === 0) {
    return (
      <p className="hint">
        No {cloud.toUpperCase()} account saved yet: add one in <Link to="/settings">Settings</Link>.
      </p>
    );
  }
  return (
    <div className="field">
      <label htmlFor={id}>Account</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        {accounts.map((c) => (
          <option key={c.id} value={c.id}>
            {c.name} ({c.location})
          </option>
        ))}
      </select>
    </div>
  );
}
