/*
 * Development/test Kafka broker: librdkafka's built-in mock cluster, a real Kafka-protocol broker
 * over TCP, held in memory. NOT for production.
 *
 *   mock-kafka <brokers> [topic:partitions ...]
 *
 * Prints "BOOTSTRAP host:port,..." once listening, then reads commands on stdin, one per line,
 * answering "OK <command>" or "ERR <reason>":
 *   topic <name> <partitions>          create a topic (the mock has no CreateTopics API)
 *   down <broker_id> | up <broker_id>  take a broker down / bring it back
 *   error <api_key> <error_code> <n>   fail the next n requests of that API with that error
 *   rtt <broker_id> <ms>               add round-trip latency to a broker
 *   clear <api_key>                    drop queued errors for an API
 *   quit                               shut down (EOF on stdin does the same)
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *name, int partitions) {
  return rd_kafka_mock_topic_create(mc, name, partitions, 1) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

int main(int argc, char **argv) {
  char errstr[512];
  int brokers = argc > 1 ? atoi(argv[1]) : 1;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (!rk) { fprintf(stderr, "rd_kafka_new: %s\n", errstr); return 1; }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers < 1 ? 1 : brokers);
  if (!mc) { fprintf(stderr, "rd_kafka_mock_cluster_new failed\n"); return 1; }

  for (int i = 2; i < argc; i++) {
    char name[256]; int partitions = 1;
    if (sscanf(argv[i], "%255[^:]:%d", name, &partitions) < 1 || !create_topic(mc, name, partitions)) {
      fprintf(stderr, "cannot create topic %s\n", argv[i]); return 1;
    }
  }
  printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);

  char line[1024];
  while (fgets(line, sizeof(line), stdin)) {
    char cmd[32] = "", name[256] = ""; int a = 0, b = 0, c = 0, ok = 0;
    line[strcspn(line, "\r\n")] = 0;
    if (sscanf(line, "%31s", cmd) != 1) continue;
    if (!strcmp(cmd, "quit")) break;
    else if (!strcmp(cmd, "topic") && sscanf(line, "%*s %255s %d", name, &a) == 2) ok = create_topic(mc, name, a);
    else if (!strcmp(cmd, "down") && sscanf(line, "%*s %d", &a) == 1) ok = !rd_kafka_mock_broker_set_down(mc, a);
    else if (!strcmp(cmd, "up") && sscanf(line, "%*s %d", &a) == 1) ok = !rd_kafka_mock_broker_set_up(mc, a);
    else if (!strcmp(cmd, "rtt") && sscanf(line, "%*s %d %d", &a, &b) == 2) ok = !rd_kafka_mock_broker_set_rtt(mc, a, b);
    else if (!strcmp(cmd, "clear") && sscanf(line, "%*s %d", &a) == 1) { rd_kafka_mock_clear_request_errors(mc, (int16_t)a); ok = 1; }
    else if (!strcmp(cmd, "error") && sscanf(line, "%*s %d %d %d", &a, &b, &c) == 3 && c > 0) {
      rd_kafka_resp_err_t *errs = calloc((size_t)c, sizeof(*errs));
      for (int i = 0; i < c; i++) errs[i] = (rd_kafka_resp_err_t)b;
      rd_kafka_mock_push_request_errors_array(mc, (int16_t)a, (size_t)c, errs);
      free(errs); ok = 1;
    }
    if (ok) printf("OK %s\n", line); else printf("ERR cannot run: %s\n", line);
    fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
