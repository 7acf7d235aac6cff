// Uploads with progress: XMLHttpRequest reports how much of the body has been sent (fetch
// cannot, without streams that browsers do not all allow in requests). Same contract as the
// client: the access token, one refresh on a 401, failures as ApiError sentences.

import { ApiError, NETWORK_MESSAGE, SESSION_ENDED_MESSAGE, errorFromResponse, type ApiClient } from "./client";

export interface UploadProgress {
  loaded: number;
  total: number;
  /** 0 to 1; the server still has to answer when it reaches 1. */
  fraction: number;
}

export interface UploadOptions {
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
}

function sendOnce(
  url: string,
  form: FormData,
  token: string | null,
  options: UploadOptions,
): Promise<{ status: number; text: string; contentType: string }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("accept", "application/json");
    if (token) xhr.setRequestHeader("authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (event) => {
      if (!options.onProgress) return;
      const total = event.lengthComputable ? event.total : 0;
      options.onProgress({ loaded: event.loaded, total, fraction: total ? event.loaded / total : 0 });
    };
    xhr.onload = () =>
      resolve({ status: xhr.status, text: xhr.responseText, contentType: xhr.getResponseHeader("content-type") ?? "" });
    xhr.onerror = () => reject(new ApiError(0, "network_error", NETWORK_MESSAGE));
    xhr.onabort = () => reject(new DOMException("The upload was cancelled.", "AbortError"));
    options.signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(form);
  });
}

/** POST `form` to `path` with upload progress; resolves to the parsed JSON answer. */
export async function uploadWithProgress<T>(
  client: ApiClient,
  path: string,
  makeForm: () => FormData,
  options: UploadOptions = {},
): Promise<T> {
  const sentWith = client.accessToken;
  let reply = await sendOnce(path, makeForm(), sentWith, options);
  if (reply.status === 401 && sentWith) {
    if (!(await client.refresh(sentWith))) {
      client.setSession(null);
      throw new ApiError(401, "session_ended", SESSION_ENDED_MESSAGE);
    }
    reply = await sendOnce(path, makeForm(), client.accessToken, options);
  }
  if (reply.status < 200 || reply.status >= 300) {
    throw await errorFromResponse(
      new Response(reply.text, { status: reply.status, headers: { "content-type": reply.contentType } }),
    );
  }
  return (reply.text ? JSON.parse(reply.text) : undefined) as T;
}

export function formatBytes(size: number): string {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(0)} KB`;
  if (size < 1024 * 1024 * 1024) return `${(size / 1024 / 1024).toFixed(1)} MB`;
  return `${(size / 1024 / 1024 / 1024).toFixed(2)} GB`;
}
