/* Small helpers shared by the C tests: assertions, files, string extraction, base64url. */
#ifndef ALLOWLY_TEST_UTIL_H
#define ALLOWLY_TEST_UTIL_H

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allowly.h"

static int test_failures = 0;

#define CHECK(cond)                                                                              \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      fprintf(stderr, "FAIL %s:%d: %s (last error: %s: %s)\n", __FILE__, __LINE__, #cond,        \
              allowly_last_error_code(), allowly_last_error_message());                          \
      test_failures++;                                                                           \
    }                                                                                            \
  } while (0)

/* Asserts a call's result code, naming both on failure. */
#define CHECK_RC(call, expected)                                                                 \
  do {                                                                                           \
    allowly_result rc_ = (call);                                                                 \
    if (rc_ != (expected)) {                                                                     \
      fprintf(stderr, "FAIL %s:%d: %s returned %s, expected %s (last error: %s: %s)\n", __FILE__, \
              __LINE__, #call, allowly_result_name(rc_), allowly_result_name(expected),          \
              allowly_last_error_code(), allowly_last_error_message());                          \
      test_failures++;                                                                           \
    }                                                                                            \
  } while (0)

#define CHECK_STR(actual, expected)                                                              \
  do {                                                                                           \
    const char *a_ = (actual);                                                                   \
    const char *e_ = (expected);                                                                 \
    if (a_ == NULL || strcmp(a_, e_) != 0) {                                                     \
      fprintf(stderr, "FAIL %s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__,         \
              #actual, a_ ? a_ : "(null)", e_);                                                  \
      test_failures++;                                                                           \
    }                                                                                            \
  } while (0)

#define CHECK_CONTAINS(haystack, needle)                                                         \
  do {                                                                                           \
    const char *h_ = (haystack);                                                                 \
    if (h_ == NULL || strstr(h_, (needle)) == NULL) {                                            \
      fprintf(stderr, "FAIL %s:%d: %s does not contain %s: %.400s\n", __FILE__, __LINE__,        \
              #haystack, (needle), h_ ? h_ : "(null)");                                          \
      test_failures++;                                                                           \
    }                                                                                            \
  } while (0)

static int test_report(const char *name) {
  if (test_failures) {
    fprintf(stderr, "%s: %d failure(s)\n", name, test_failures);
    return 1;
  }
  printf("ok    %s\n", name);
  return 0;
}

static inline char *read_file(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)len + 1);
  if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(2);
  }
  buf[len] = '\0';
  fclose(f);
  if (len_out) *len_out = (size_t)len;
  return buf;
}

/* The string value after `"key":"` in compact JSON, malloc'd (NULL if absent). */
static inline char *json_string(const char *json, const char *key) {
  char pattern[128];
  snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
  const char *start = json ? strstr(json, pattern) : NULL;
  if (!start) return NULL;
  start += strlen(pattern);
  const char *end = strchr(start, '"');
  if (!end) return NULL;
  char *out = malloc((size_t)(end - start) + 1);
  memcpy(out, start, (size_t)(end - start));
  out[end - start] = '\0';
  return out;
}

/* A string with the first `from` replaced by `to` (malloc'd; a copy if absent). */
static inline char *replace_first(const char *text, const char *from, const char *to) {
  const char *at = strstr(text, from);
  size_t len = strlen(text), from_len = strlen(from), to_len = strlen(to);
  char *out = malloc(len + to_len + 1);
  if (!at) {
    memcpy(out, text, len + 1);
    return out;
  }
  size_t head = (size_t)(at - text);
  memcpy(out, text, head);
  memcpy(out + head, to, to_len);
  memcpy(out + head + to_len, at + from_len, len - head - from_len + 1);
  return out;
}

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static inline char *b64url_encode(const unsigned char *in, size_t len) {
  char *out = malloc(len * 4 / 3 + 4);
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    if (i + 1 < len) v |= (unsigned)in[i + 1] << 8;
    if (i + 2 < len) v |= in[i + 2];
    out[o++] = B64URL[(v >> 18) & 63];
    out[o++] = B64URL[(v >> 12) & 63];
    if (i + 1 < len) out[o++] = B64URL[(v >> 6) & 63];
    if (i + 2 < len) out[o++] = B64URL[v & 63];
  }
  out[o] = '\0';
  return out;
}

static inline char *b64url_decode(const char *in, size_t len) {
  char *out = malloc(len * 3 / 4 + 2);
  unsigned v = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    const char *p = strchr(B64URL, in[i]);
    if (!p || !in[i]) break;
    v = (v << 6) | (unsigned)(p - B64URL);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (char)((v >> bits) & 0xff);
    }
  }
  out[o] = '\0';
  return out;
}

/* Replaces `from` by `to` inside the decoded JWS segment `segment` ("protected" or "payload")
   of a receipt JSON, re-encoding it. Returns a new receipt JSON (malloc'd). */
static inline char *tamper_segment(const char *receipt, const char *segment, const char *from, const char *to) {
  char *encoded = json_string(receipt, segment);
  if (!encoded) return NULL;
  char *decoded = b64url_decode(encoded, strlen(encoded));
  char *changed = replace_first(decoded, from, to);
  char *reencoded = b64url_encode((const unsigned char *)changed, strlen(changed));
  char *out = replace_first(receipt, encoded, reencoded);
  free(encoded);
  free(decoded);
  free(changed);
  free(reencoded);
  return out;
}

static inline double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

#endif
