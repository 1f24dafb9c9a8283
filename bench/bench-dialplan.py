#!/usr/bin/env python3
"""The bench clinic: dialplans/clinic.toml, always open, with many more agents.

usage: bench-dialplan.py OUT_DIR AGENTS CONTACT_PORT

Writes, in OUT_DIR:
  bench.toml   the demo clinic (dialplans/clinic.toml) with three changes:
               - no [[hours]] / [[holidays]] / [after_hours]: always open, so a
                 run does not depend on the time of day in America/Chicago;
               - AGENTS more agents, ids 30000, 30001, ... (password
                 bench-<id>), each with the skill "pediatrics" only: menu
                 key 3 reaches them (the demo's own Carol and Frank stay);
               - one more number, +15550133 (source "bench-relay"): the
                 emergency notice, then straight to the pediatrics queue, for
                 callers that press nothing (the RTP relay load);
               - and +15550134 (source "bench-direct"): straight to the
                 pediatrics queue with no prompt first, exempt from the
                 safety check (bench/phone.sh's INVITE -> ringing);
  agents.csv   SIPp injection file for tests/sipp/register-agent.xml: every
               bench agent with its credentials and CONTACT_PORT as the
               contact port (one SIPp UAS answers for all of them);
  prompts      a link to dialplans/prompts.

Everything else (menus, queues with their 2 s wrap-up and 15 s ring
timeout, the emergency notice and its barge-in) is the demo clinic's.
"""
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out, agents, contact_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if not 0 <= agents <= 50000:
    sys.exit("bench-dialplan.py: AGENTS must be 0..50000")
os.makedirs(out, exist_ok=True)
text = open(os.path.join(root, "dialplans", "clinic.toml")).read()

# Always open: drop the hours, holidays and after-hours sections.
start = text.index("[[hours]]")
end = text.index("# ── While callers wait")
text = text[:start] + text[end:]

relay_number = """[[numbers]]
number = "+15550133"
source = "bench-relay"
priority = "routine"
announce = ["prompts/emergency-notice.wav"]
then = { queue = "pediatrics" }

[[numbers]]
number = "+15550134"
source = "bench-direct"
priority = "routine"
exempt_from_safety = "bench only: measures INVITE to ringing without the 4.7 s notice"
then = { queue = "pediatrics" }

"""
marker = '[[numbers]]\nnumber = "+15550111"'
assert marker in text, "clinic.toml changed shape"
text = text.replace(marker, relay_number + marker, 1)

lines = [text.rstrip("\n"), "", "# ── Bench agents (bench/bench-dialplan.py) ──", ""]
csv = ["SEQUENTIAL"]
for n in range(agents):
    agent = 30000 + n
    lines.append(
        f'[[agents]]\nid = "{agent}"\nname = "Bench {agent}"\npassword = "bench-{agent}"\n'
        f'skills = ["pediatrics"]\n'
    )
    csv.append(
        f"{agent};[authentication username={agent} password=bench-{agent}];{contact_port};3600"
    )
open(os.path.join(out, "bench.toml"), "w").write("\n".join(lines))
open(os.path.join(out, "agents.csv"), "w").write("\n".join(csv) + "\n")
link = os.path.join(out, "prompts")
if not os.path.lexists(link):
    os.symlink(os.path.join(root, "dialplans", "prompts"), link)
print(os.path.join(out, "bench.toml"))
