"""The doctor's findings: one line per check with its verdict, what it found and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field

OK, INFO, WARN, FAIL = "ok", "info", "WARN", "FAIL"


@dataclass
class Check:
    topic: str
    status: str
    text: str
    details: list = field(default_factory=list)
    fix: str = ""


class Report:
    def __init__(self, out=print):
        self.checks: list[Check] = []
        self.out = out

    def add(self, topic, status, text, details=(), fix="") -> Check:
        check = Check(topic, status, text, list(details), fix)
        self.checks.append(check)
        self._print(check)
        return check

    def _print(self, c: Check) -> None:
        label = {OK: " ok ", INFO: "info", WARN: "WARN", FAIL: "FAIL"}[c.status]
        self.out(f"[{label}] {c.topic}: {c.text}")
        for line in c.details:
            self.out(f"       {line}")
        if c.fix:
            lines = c.fix.splitlines()
            self.out(f"       fix: {lines[0]}")
            for line in lines[1:]:
                self.out(f"            {line}")

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def summary(self) -> str:
        n_fail = len(self.failed)
        n_warn = sum(c.status == WARN for c in self.checks)
        if n_fail:
            verdict = f"{n_fail} problem(s) would block a run"
        else:
            verdict = "nothing blocks a run"
        return f"\nneurodamus doctor: {verdict}; {n_warn} warning(s)."
