import { useState } from "react";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router-dom";
import { useAuth } from "../auth/AuthContext";

export interface NavItem {
  to: string;
  label: string;
  end?: boolean;
  /** Shown only to administrators. */
  adminOnly?: boolean;
}

export const NAV_ITEMS: NavItem[] = [
  { to: "/", label: "Home", end: true },
  { to: "/datasets", label: "Datasets" },
  { to: "/fine-tune", label: "Fine-tune" },
  { to: "/jobs", label: "Jobs" },
  { to: "/models", label: "Models" },
  { to: "/deployments", label: "Deployments" },
  { to: "/chat", label: "Chat" },
  { to: "/knowledge-bases", label: "Knowledge bases" },
  { to: "/usage", label: "Usage" },
  { to: "/people", label: "People", adminOnly: true },
  { to: "/settings", label: "Settings" },
];

export function Layout() {
  const { client, session } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  // The phone-width menu is open on the page where it was opened: following a link closes it
  // (no effect needed to reset it).
  const [menuOpenedAt, setMenuOpenedAt] = useState<string | null>(null);
  const menuOpen = menuOpenedAt === location.pathname;
  const [signingOut, setSigningOut] = useState(false);
  const isAdmin = session?.user.role === "admin";
  const navItems = NAV_ITEMS.filter((item) => isAdmin || !item.adminOnly);

  const signOut = async () => {
    setSigningOut(true);
    await client.logout();
    navigate("/signin", { replace: true });
  };

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/" className="brand" aria-label="Forgeline home">
          <img src="/favicon.svg" alt="" width="28" height="28" />
          <span>Forgeline</span>
        </NavLink>
        <button
          type="button"
          className="menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="main-nav"
          onClick={() => setMenuOpenedAt(menuOpen ? null : location.pathname)}
        >
          Menu
        </button>
        <div className="account">
          <span className="account-email" title={session?.user.email}>
            {session?.user.email}
          </span>
          <button type="button" className="button button-small" onClick={signOut} disabled={signingOut}>
            {signingOut ? "Signing out…" : "Sign out"}
          </button>
        </div>
      </header>
      <div className="body">
        <nav id="main-nav" className={menuOpen ? "sidebar open" : "sidebar"} aria-label="Main">
          <ul>
            {navItems.map((item) => (
              <li key={item.to}>
                <NavLink to={item.to} end={item.end}>
                  {item.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          <Outlet />
        </main>
      </div>
    </div>
  );
}
