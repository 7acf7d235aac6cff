// The API reference at /docs: Swagger UI bundled from npm and served by the gateway from
// web/dist under the client's own Content-Security-Policy (no CDN, no inline script).
import SwaggerUI from "swagger-ui-dist/swagger-ui-es-bundle.js";
import "swagger-ui-dist/swagger-ui.css";

SwaggerUI({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // "Try it out" sends a bearer token the reader pastes into Authorize; it is not kept.
  persistAuthorization: false,
});
