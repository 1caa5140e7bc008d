"""
The seed's own serving stack, for scripts/bench/http.ts: a Flask app around a scikit-learn
StandardScaler + MLPClassifier (64-64-32-10, like the digits bundle) trained on data/digits.csv
at start-up. Run under gunicorn (`gunicorn -w 2 --preload flask-digits:app`); DIGITS_CSV names
the data file.
"""
import csv
import os

import numpy as np
from flask import Flask, jsonify, request
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    label = header.index("label")
    x = np.array([[float(v) for i, v in enumerate(r) if i != label] for r in body])
    y = np.array([r[label] for r in body])
    return x, y


X, Y = load(os.environ["DIGITS_CSV"])
model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=300, random_state=0))
model.fit(X, Y)
LABELS = [str(c) for c in model.classes_]

app = Flask(__name__)


@app.post("/predict")
def predict():
    body = request.get_json(force=True)
    features = body["features"]
    single = not isinstance(features[0], list)
    x = np.asarray([features] if single else features, dtype=np.float64)
    p = model.predict_proba(x)
    idx = p.argmax(axis=1)
    labels = [LABELS[i] for i in idx]
    conf = [float(p[r, i]) for r, i in enumerate(idx)]
    probs = p.tolist()
    if single:
        return jsonify(prediction=labels[0], confidence=conf[0], probabilities=probs[0])
    return jsonify(prediction=labels, confidence=conf, probabilities=probs)
