# Shared by the benchmark scripts (sourced): a free loopback port, and a throw-away Redis.

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# start_redis PORT DIR: a Redis without persistence on 127.0.0.1:PORT, its pid in RPID,
# answering when this returns.
start_redis() {
    redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$2" >/dev/null 2>&1 &
    RPID=$!
    until redis-cli -p "$1" ping >/dev/null 2>&1; do sleep 0.05; done
}
