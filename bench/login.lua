-- wrk script: POST /auth/login with a JSON body (set by bench_auth.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("LOGIN_BODY")
