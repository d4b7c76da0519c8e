"""The study of Video Mobile-Former's global tokens (ABLATIONS.md): its scripts, run from this
folder's path (`python research/vmf_tokens/study.py`), the pieces they register with effvid
(register.py) and their tests (`make research-test`)."""
