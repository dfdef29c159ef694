# Shared by bench/tls.sh and bench/h2.sh (sourced): the certificate and the HTTP/1.1 backend both use.
#   make_certificate DIR          # DIR/cert.pem and DIR/key.pem: ECDSA P-256, CN and SAN bench.test
#   backend_nginx_conf DIR PORT   # DIR/nginx.conf: one worker answering "hello from the backend" on 127.0.0.1:PORT
make_certificate() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}
backend_nginx_conf() {
  mkdir -p "$1"
  cat > "$1/nginx.conf" <<CONF
worker_processes 1; daemon off; pid backend.pid; error_log error.log warn;
events { worker_connections 16384; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:$2 backlog=4096; location / { return 200 "hello from the backend\n"; } } }
CONF
}
