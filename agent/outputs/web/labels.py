"""The web page's own words, in the built-in languages, and the integrator's override file.

The override file (`labels` key) is JSON: `{"pl": {"price": "Cena", ...}, "de": {...}}`; it adds
languages or replaces single labels of built-in ones. A label left out falls back to English.
"""

from __future__ import annotations

import json
import re

from agent.outputs.web.files import read_file

KEYS = ("price", "tariff", "charging", "idle", "finished", "unavailable", "connector", "total",
        "live_total", "energy", "power", "duration", "prices", "idle_fee", "next_period",
        "estimate", "preview", "not_final", "stale", "receipt", "pay", "meter_key", "offline",
        "offline_detail", "lost", "lost_detail", "waiting", "transparency", "qr_too_long",
        "details")

BUILTIN: dict[str, tuple[str, ...]] = {
    "en": ("Price", "Your tariff", "Charging", "Not charging", "Thank you",
           "Unavailable", "Connector", "Total", "Now about", "Energy", "Power", "Duration",
           "Prices", "Idle fee", "From", "Estimate", "Examples", "Final cost not received yet",
           "not updated", "Scan for your receipt", "Scan to pay here", "Meter public key",
           "Charger offline", "The charging system does not answer.", "Display disconnected",
           "Trying to reconnect…", "Waiting for the charger…",
           "Scan for the transparency software", "Too long for a QR code", "Scan for details"),
    "de": ("Preis", "Ihr Tarif", "Ladevorgang", "Lädt nicht", "Danke",
           "Nicht verfügbar", "Ladepunkt", "Gesamt", "Aktuell etwa", "Energie", "Leistung",
           "Dauer", "Preise", "Blockiergebühr", "Ab", "Schätzung", "Beispiele",
           "Endpreis noch nicht erhalten", "nicht aktuell", "Scannen für Ihren Beleg",
           "Hier scannen und bezahlen", "Öffentlicher Schlüssel des Zählers",
           "Ladestation offline", "Das Ladesystem antwortet nicht.", "Anzeige getrennt",
           "Verbindung wird wiederhergestellt…", "Warte auf die Ladestation…",
           "Scannen für die Transparenzsoftware", "Zu lang für einen QR-Code",
           "Für Details scannen"),
    "fr": ("Prix", "Votre tarif", "Recharge", "Pas de recharge", "Merci",
           "Indisponible", "Point de charge", "Total", "Actuellement env.", "Énergie",
           "Puissance", "Durée", "Prix", "Frais d'occupation", "À partir de", "Estimation",
           "Exemples", "Coût final pas encore reçu", "pas à jour", "Scannez pour votre reçu",
           "Scannez pour payer ici", "Clé publique du compteur", "Borne hors ligne",
           "Le système de recharge ne répond pas.", "Affichage déconnecté",
           "Reconnexion en cours…", "En attente de la borne…",
           "Scannez pour le logiciel de transparence", "Trop long pour un code QR",
           "Scannez pour les détails"),
    "nl": ("Prijs", "Uw tarief", "Laden", "Laadt niet", "Bedankt",
           "Niet beschikbaar", "Laadpunt", "Totaal", "Nu ongeveer", "Energie", "Vermogen",
           "Duur", "Prijzen", "Bezettingskosten", "Vanaf", "Schatting", "Voorbeelden",
           "Eindprijs nog niet ontvangen", "niet actueel", "Scan voor uw bon",
           "Scan om hier te betalen", "Publieke sleutel van de meter", "Laadpaal offline",
           "Het laadsysteem antwoordt niet.", "Scherm niet verbonden", "Opnieuw verbinden…",
           "Wachten op de laadpaal…", "Scan voor de transparantiesoftware",
           "Te lang voor een QR-code", "Scan voor details"),
    "it": ("Prezzo", "La tua tariffa", "In ricarica", "Non in carica",
           "Grazie", "Non disponibile", "Punto di ricarica", "Totale", "Ora circa", "Energia",
           "Potenza", "Durata", "Prezzi", "Tariffa di sosta", "Da", "Stima", "Esempi",
           "Costo finale non ancora ricevuto", "non aggiornato", "Scansiona per la ricevuta",
           "Scansiona per pagare qui", "Chiave pubblica del contatore", "Colonnina offline",
           "Il sistema di ricarica non risponde.", "Display disconnesso",
           "Riconnessione in corso…", "In attesa della colonnina…",
           "Scansiona per il software di trasparenza", "Troppo lungo per un codice QR",
           "Scansiona per i dettagli"),
    "es": ("Precio", "Su tarifa", "Cargando", "Sin carga", "Gracias",
           "No disponible", "Punto de carga", "Total", "Ahora aprox.", "Energía", "Potencia",
           "Duración", "Precios", "Tarifa de ocupación", "Desde", "Estimación", "Ejemplos",
           "Coste final aún no recibido", "no actualizado", "Escanee para su recibo",
           "Escanee para pagar aquí", "Clave pública del contador", "Cargador fuera de línea",
           "El sistema de carga no responde.", "Pantalla desconectada", "Reconectando…",
           "Esperando al cargador…", "Escanee para el software de transparencia",
           "Demasiado largo para un código QR", "Escanee para más detalles"),
}

_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})?")
MAX_FILE = 256 * 1024


class LabelError(ValueError):
    """The override file or a language is unusable; the text names what is wrong."""


def valid_language(code: str) -> bool:
    """A language tag the page can use as a key (`de`, `pt-BR`)."""
    return _LANGUAGE.fullmatch(code) is not None


def load_labels(languages: list[str], path: str = "") -> dict[str, dict[str, str]]:
    """The labels of each configured language (built-in, overridden by the file at `path`)."""
    table = {code: dict(zip(KEYS, words, strict=True)) for code, words in BUILTIN.items()}
    if path:
        for code, words in _read(path).items():
            table[code] = {**table.get(code, table["en"]), **words}
    missing = [code for code in languages if code not in table]
    if missing:
        raise LabelError(f"no labels for {', '.join(missing)} (built in: "
                         f"{', '.join(BUILTIN)}; others need a labels file)")
    return {code: table[code] for code in languages}


def _read(path: str) -> dict[str, dict[str, str]]:
    try:
        raw = read_file(path, MAX_FILE)
    except ValueError as exc:
        raise LabelError(str(exc)) from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LabelError(f"{path}: must be an object of languages")
    result: dict[str, dict[str, str]] = {}
    for code, words in data.items():
        if not valid_language(code) or not isinstance(words, dict):
            raise LabelError(f"{path}: {code!r} must be a language code with an object of labels")
        for key, text in words.items():
            if key not in KEYS:
                raise LabelError(f"{path}: {code}.{key} is not a label (known: {', '.join(KEYS)})")
            if not isinstance(text, str) or len(text) > 200:
                raise LabelError(f"{path}: {code}.{key} must be a text of at most 200 characters")
        result[code] = dict(words)
    return result
