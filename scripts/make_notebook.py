"""Writes docs/notebook.ipynb (kept as a script so the notebook is reviewed as code)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("# RNN State Explorer from Python\n\n"
       "Everything the app shows comes from the `explorer` package: load a bundle, trace a text, read "
       "the states as tidy tables, draw the figures, play the Explore player in the notebook, import your "
       "own PyTorch checkpoint and export what you see. CI runs this notebook from top to bottom (nbclient)."),
    code("import sys, pathlib\n"
         "ROOT = pathlib.Path.cwd().parent                          # this notebook lives in docs/\n"
         "if (ROOT / 'explorer').is_dir() and str(ROOT) not in sys.path:\n"
         "    sys.path.insert(0, str(ROOT))                       # the repository, when explorer is not installed\n\n"
         "import explorer as E\n"
         "from explorer.present import export\n\n"
         "model = E.load_model(ROOT / 'pretrained' / 'fiction-lstm')      # a bundle: weights.safetensors, tokenizer.json, card.json\n"
         "model.config"),
    md("## A trace: everything the network computes while it reads\n\n"
       "`i, f, g, o, c, h` per layer, each `[tokens, units]`, and the next-token distribution."),
    code("tr = model.trace('A girl walked into a bar, and she said \"Can I have a drink please?\" '\n"
         "                  'The bartender said \"Certainly, miss.\"')\n"
         "print(len(tr), 'tokens;', tr.layer(2).c.shape, '= [tokens, units] of the cell state of layer 2, the top')\n"
         "tr.top_words(len(tr) - 2, 5)     # after 'miss': the five most probable next tokens"),
    code("states = tr.to_frame()            # tidy: one row per (token, layer, quantity, unit)\n"
         "states.head()"),
    code("tr.predictions_frame().tail()     # one row per token: surprisal, the next token's probability and rank"),
    md("## The player, as in the app\n\n"
       "`E.show` runs the app's own player (`explorer/present/assets/player.js`) as a widget: ← → step, Home / End, P plays, "
       "hover the heatmaps for values. `player.pos` is the token selected in the browser."),
    code("player = E.show(tr, model=model)\nplayer"),
    md("## Figures and files\n\n"
       "The Explore page's figures by name (`heatmaps`, `gates`, `step`, `next-words`), and the same "
       "exports as `python -m explorer export`: CSV / Parquet / JSON for data, PNG / SVG (Kaleido and "
       "Chromium) or self-contained HTML for figures."),
    code("fig = export.build_figure('step', tr, model, layer=2, t=len(tr) - 1)   # layer 1 = the bottom layer\nfig"),
    code("import io, pandas as pd\n"
         "parquet = export.export(model, tr.text, 'states', 'parquet', tr=tr)\n"
         "html = export.export(model, tr.text, 'figure:heatmaps', 'html', tr=tr)\n"
         "print(len(pd.read_parquet(io.BytesIO(parquet))), 'rows;', len(html) // 1024, 'KB of offline HTML')"),
    md("## Your own model\n\n"
       "A checkpoint of pytorch/examples' word language model (`encoder`, `rnn`, `decoder`) becomes a bundle. "
       "Here a small random one is made and saved as a plain state dict; `import_checkpoint` infers the cell, "
       "sizes and tying from the shapes (the command line: `python -m explorer import --weights model.pt "
       "--vocab vocab.json --out pretrained/mine`)."),
    code("import json, tempfile, pathlib, torch\n"
         "from torch import nn\n"
         "from explorer.importer import import_checkpoint\n\n"
         "class RNNModel(nn.Module):          # the layout of pytorch/examples/word_language_model/model.py\n"
         "    def __init__(self, ntoken, ninp, nhid, nlayers):\n"
         "        super().__init__()\n"
         "        self.encoder = nn.Embedding(ntoken, ninp)\n"
         "        self.rnn = nn.LSTM(ninp, nhid, nlayers)\n"
         "        self.decoder = nn.Linear(nhid, ntoken)\n\n"
         "words = '<unk> <eos> the cat sat on mat .'.split()\n"
         "tmp = pathlib.Path(tempfile.mkdtemp())\n"
         "torch.save(RNNModel(len(words), 12, 20, 2).state_dict(), tmp / 'model.pt')   # a plain state dict\n"
         "(tmp / 'vocab.json').write_text(json.dumps(words))\n"
         "mine, report = import_checkpoint(tmp / 'model.pt', tmp / 'vocab.json', name='mine')\n"
         "report['layout'], report['config'], report['tokenizer']['split']"),
    code("mine.trace('the cat sat on the mat .').predictions_frame()"),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                                 "language_info": {"name": "python"}})
nbf.write(nb, "docs/notebook.ipynb")
