"""The reproductions ledger: every declared claim is measured and has a row, REPRODUCTIONS.md is in sync with the
stored results, a claim records only from its own command; and the experiments' layout is one to one."""

import json
import os
import re

import pytest

from experiments.configs import sgn as sgn_config
from experiments.lib import reproductions, sgn
from experiments.lib.common import claims

ROOT = claims.ROOT
EXPECTED = {'sgn_markov_band', 'stability_trace_threshold', 'hessian_outliers', 'langevin_averaging_threshold',
            'dgc_ratio', 'ef21_w_gain', 'streaming_diloco_bandwidth', 'robust_monna', 'char_lm_swan'}


def test_the_claims_of_issue_nine_are_declared_once():
  ids = [c.id for c in reproductions.declared()]
  assert EXPECTED <= set(ids) and len(ids) == len(set(ids))


@pytest.mark.parametrize('claim', reproductions.declared(), ids=lambda c: c.id)
def test_every_claim_is_measured_by_its_own_command(claim):
  stored = claims.load(claim.id)
  assert stored is not None, f'no experiments/results/{claim.id}.json: run `{claim.command()}`'
  assert stored['command'] == claim.command(), 'the stored number came from another command: measure it again'
  assert stored['preset'] == (claim.preset or 'default')
  assert re.fullmatch(r'\d{4}-\d{2}-\d{2}', stored['date'])
  assessment = claim.assess(stored['measured'])
  assert assessment.verdict in claims.VERDICTS and assessment.ours and assessment.why
  assert claim.arxiv and claim.paper_number and claim.claim
  claim.config()  # the preset exists and every override names a field of the config


def test_reproductions_md_is_in_sync_with_the_stored_results():
  with open(os.path.join(ROOT, 'REPRODUCTIONS.md')) as f:
    on_disk = f.read()
  assert on_disk == reproductions.render(), 'REPRODUCTIONS.md is stale: run `python -m experiments.reproductions`'
  rows = [line for line in on_disk.splitlines() if line.startswith('| **')]
  for claim in reproductions.declared():
    assert sum(f'**{claim.title}**' in row for row in rows) == 1, claim.id
  assert 'not measured' not in on_disk


def test_stored_results_are_small_and_all_declared():
  declared = {c.id for c in reproductions.declared()}
  for name in os.listdir(claims.RESULTS_DIR):
    path = os.path.join(claims.RESULTS_DIR, name)
    assert name.endswith('.json') and name[:-5] in declared, f'{name}: no claim declares it'
    assert os.path.getsize(path) < 4096
    json.load(open(path))


def test_record_only_with_the_claims_exact_config(tmp_path):
  claim, = sgn.CLAIMS
  config = sgn_config.get_config()
  assert claims.to_record(sgn.CLAIMS, config) == []  # record=False: nothing to record
  config.record = True
  assert claims.to_record(sgn.CLAIMS, config) == [claim]
  smoke = sgn_config.get_config('smoke')
  smoke.record = True
  with pytest.raises(ValueError, match='python -m experiments.sgn --config=experiments/configs/sgn.py'):
    claims.to_record(sgn.CLAIMS, smoke)
  headline = [{'name': 'markov_band', 'value': [0.13, 7.0]},
              {'name': 'markov_alpha', 'value': 0.33, 'r_best': 1.0},
              {'name': 'markov_empirical_over_certified', 'value': 5.0}]
  path, = claims.record([claim], headline, results_dir=str(tmp_path))
  stored = claims.load(claim.id, str(tmp_path))
  assert stored['command'] == claim.command() and stored['measured']['band_low'] == 0.13
  assert claim.assess(stored['measured']).verdict == 'agree'
  assert 'agree' in reproductions.render(str(tmp_path)) and 'not measured' in reproductions.render(str(tmp_path))


def _names(folder, pattern=r'([a-z_]+)\.py$'):
  return {m.group(1) for m in map(re.compile(pattern).match, os.listdir(folder)) if m} - {'__init__'}


def test_scripts_configs_and_libraries_correspond_one_to_one():
  experiments = os.path.join(ROOT, 'experiments')
  scripts = _names(experiments) - {'launch'}  # launch starts other scripts on several processes: no config of its own
  configs = _names(os.path.join(experiments, 'configs'))
  lib = os.path.join(experiments, 'lib')
  libraries = _names(lib) | {d for d in os.listdir(lib) if os.path.isfile(os.path.join(lib, d, '__init__.py'))}
  assert scripts == configs == libraries - {'common'}, (scripts, configs, libraries)


def test_nothing_but_tests_and_notebooks_imports_experiments():
  offenders = []
  for top in ('optim', 'decentral', 'theory', 'benchmarks'):
    for folder, _, files in os.walk(os.path.join(ROOT, top)):
      for name in files:
        if name.endswith('.py'):
          path = os.path.join(folder, name)
          with open(path) as f:
            if re.search(r'^\s*(from|import) experiments\b', f.read(), re.MULTILINE):
              offenders.append(os.path.relpath(path, ROOT))
  assert not offenders
