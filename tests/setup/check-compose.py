#!/usr/bin/env python3
"""Validates docker-compose.yml without a Docker engine: structure, build contexts, and that what it
passes to our binaries (env vars, subcommands) is what the binaries accept."""
import os, re, subprocess, sys
import yaml

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(root, "docker-compose.yml")) as f:
    compose = yaml.safe_load(f)
errors = []
services = compose.get("services") or {}
for required in ("db", "cloud", "edge"):
    if required not in services:
        errors.append(f"service {required} missing")
for name, svc in services.items():
    build = svc.get("build")
    if build:
        df = os.path.join(root, build.get("context", "."), build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(df):
            errors.append(f"{name}: dockerfile {df} missing")
    for dep in (svc.get("depends_on") or {}):
        if dep not in services:
            errors.append(f"{name}: depends on unknown service {dep}")
    for vol in svc.get("volumes") or []:
        src = vol.split(":")[0]
        if not src.startswith(".") and src not in (compose.get("volumes") or {}):
            errors.append(f"{name}: volume {src} is not declared")

def help_text(binary, *args):
    exe = os.path.join(root, "target", "debug", binary)
    return subprocess.run([exe, *args, "--help"], capture_output=True, text=True, check=True).stdout

cloud_help = help_text("vigil-cloud") + help_text("vigil-cloud", "serve")
for var in (services.get("cloud", {}).get("environment") or {}):
    if var.startswith("VIGIL_") and var not in cloud_help:
        errors.append(f"cloud: env {var} is not read by vigil-cloud")
edge_help = help_text("vigil-edge")
for var in (services.get("edge", {}).get("environment") or {}):
    if var.startswith("VIGIL_") and var not in edge_help:
        errors.append(f"edge: env {var} is not read by vigil-edge")
cloud_df = open(os.path.join(root, "cloud/Dockerfile")).read()
m = re.search(r'CMD \["(\w+)"', cloud_df)
if not m or m.group(1) not in cloud_help:
    errors.append("cloud/Dockerfile: CMD subcommand is not a vigil-cloud subcommand")

if errors:
    print("docker-compose.yml is invalid:\n  - " + "\n  - ".join(errors))
    sys.exit(1)
print(f"docker-compose.yml: ok ({len(services)} services)")
