/* The echo job in C against the vendor's archive, linked statically: how small an image of
 * the kernel can be, to set the Rust images' sizes against (see the README, "Static
 * images"). One /bin/cat worker, 1 000 requests one at a time, each checked.
 *
 *   cc -static -Os -s -o echo echo.c path/to/libstdio_bus.a -lpthread
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct stdio_bus stdio_bus_t;
typedef void (*message_cb)(stdio_bus_t *, const char *, size_t, void *);

typedef struct { /* field order is the ABI */
    int mode;
    const char *tcp_host;
    uint16_t tcp_port;
    const char *unix_path;
} listener_t;

typedef struct { /* field order is the ABI */
    const char *config_path;
    const char *config_json;
    listener_t listener;
    message_cb on_message;
    void *on_error, *on_log, *on_worker, *on_client_connect, *on_client_disconnect;
    void *user_data;
    int log_level;
} options_t;

stdio_bus_t *stdio_bus_create(const options_t *);
int stdio_bus_start(stdio_bus_t *);
int stdio_bus_step(stdio_bus_t *, int timeout_ms);
int stdio_bus_ingest(stdio_bus_t *, const char *, size_t);

static char echoed[128];
static int answered;

static void on_message(stdio_bus_t *bus, const char *line, size_t len, void *user) {
    (void)bus;
    (void)user;
    if (len < sizeof echoed) {
        memcpy(echoed, line, len);
        echoed[len] = 0;
        answered = 1;
    }
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    options_t options = {0};
    options.config_json = "{\"pools\":[{\"id\":\"echo\",\"command\":\"/bin/cat\",\"instances\":1}]}";
    options.on_message = on_message;
    options.log_level = 2;
    stdio_bus_t *bus = stdio_bus_create(&options);
    if (!bus || stdio_bus_start(bus) != 0) return 1;
    char request[128];
    for (int id = 0; id < 1000; id++) {
        int len = snprintf(request, sizeof request, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"echo\"}", id);
        if (stdio_bus_ingest(bus, request, (size_t)len) != 0) return 1;
        answered = 0;
        for (int tries = 0; !answered && tries < 50; tries++) stdio_bus_step(bus, 100);
        if (!answered || strcmp(echoed, request) != 0) return 1;
    }
    printf("c floor: 1000 round trips echoed\n");
    /* No stop or destroy: the 1.1.1 archive's destroy crashes with a worker connection
     * open, and the process ends here anyway. */
    return 0;
}
