# Two commands on a fresh machine: `make demo` runs the app, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages: chromium for the browser tests, espeak-ng for the spoken-digit check,
# fluidsynth + the small TimGM6mb soundfont and timidity + freepats for the instrument tests
# (installed only when missing and we are root). Rendering the instruments training set also
# needs fluid-soundfont-gm and musescore-general-soundfont (see README).
APT_PACKAGES := chromium espeak-ng fluidsynth timgm6mb-soundfont timidity freepats

.PHONY: demo test bench venv sysdeps clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

sysdeps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v espeak-ng >/dev/null 2>&1 || \
	    ! command -v fluidsynth >/dev/null 2>&1 || [ ! -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || \
	    ! command -v timidity >/dev/null 2>&1 || [ ! -f /etc/timidity/freepats.cfg ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	  else echo "note: chromium, espeak-ng, fluidsynth or timidity missing and not root; their tests will be skipped (sudo apt-get install $(APT_PACKAGES))"; fi; \
	fi

# the AudioSet-pretrained base (4 MB, EfficientAT's release) is fetched once if missing: running the
# demo is asking for it; offline, the app starts anyway and says how to fetch it later
demo: venv
	-$(PY) -m models.pretrained --download
	$(PY) app.py

test: venv sysdeps
	$(PY) -m pytest -q -ra tests

bench: venv
	$(PY) benchmarks/bench_image.py
	$(PY) benchmarks/bench_sensitivity.py

clean:
	rm -rf $(VENV) .pytest_cache
