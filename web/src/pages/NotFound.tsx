import { Link } from "react-router-dom";
import { EmptyState, PageHeader } from "../components/ui";

export function NotFound() {
  return (
    <>
      <PageHeader title="Page not found" />
      <EmptyState title="There is nothing here">
        <p>
          The page may have moved. <Link to="/">Go to Home</Link>.
        </p>
      </EmptyState>
    </>
  );
}
