import json, sys, os
def row(path, arch_filter=None, label=None):
    r = json.load(open(path))
    best = (r.get('best_achievable_auc') or {}).get('watch_through')
    out = []
    for s in r['summaries']:
        if arch_filter and s['architecture'] not in arch_filter: continue
        m = s['metrics'].get('watch_through', {})
        f = lambda k: (f"{m[k]['mean']:.4f}" + (f" ± {m[k]['sd']:.4f}" if m[k]['sd'] is not None else '')) if k in m else "–"
        x = s['metrics'].get('watch_ratio', {}).get('xauc')
        xs = (f"{x['mean']:.4f}" + (f" ± {x['sd']:.4f}" if x['sd'] is not None else '')) if x else '–'
        out.append(f"| {label or ''} | {s['architecture']} | {f('auc')} | {f('logloss')} | {f('recall_at_3')} | {f('ndcg_at_3')} | {xs} | {s['mean_train_seconds']:.1f} | {best:.4f} |" if best else
                   f"| {label or ''} | {s['architecture']} | {f('auc')} | {f('logloss')} | {f('recall_at_3')} | {f('ndcg_at_3')} | {xs} | {s['mean_train_seconds']:.1f} | – |")
    return out
print("| run | architecture | watch_through AUC | logloss | Recall@3 | NDCG@3 | watch_ratio XAUC | train s | ceiling AUC |")
print("|---|---|---|---|---|---|---|---|---|")
for arg in sys.argv[1:]:
    label, path = arg.split('=', 1)
    if os.path.exists(path):
        for l in row(path, label=label): print(l)
