"""Contract comparison (AST-4): clauses segmented in Chinese and English, a modified copy of a
standard template compared with it — missing, changed (with a word diff), moved and added clauses,
each with the risk of its type — through the service, the API (TXT, DOCX, PDF) and the page."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from docx import Document
from fastapi.testclient import TestClient

from closeloop.assistant.contracts import clauses
from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api, assert_problem
from tests.web.test_settings_pages import browser, csrf_of

HERE = Path(__file__).parent / "contracts"


def fixture(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def by_title(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {(c["contract"] or c["template"])["title"]: c for c in result["clauses"]}


def test_clauses_are_segmented_by_article_ordinal_and_english_numbering() -> None:
    zh = clauses.segment(fixture("template_zh.txt"))
    assert zh[0].number is None
    assert "甲方" in zh[0].text
    assert [(c.number, c.title, c.kind) for c in zh[1:4]] == [
        (1, "合同标的", "other"),
        (2, "付款方式", "payment"),
        (3, "交货与验收", "other"),
    ]
    assert {c.title: c.kind for c in zh}["责任限制"] == "liability_cap"
    assert {c.title: c.kind for c in zh}["争议解决"] == "jurisdiction"
    # 一、 under 第X条 are sub-items; alone they are the clauses; titles after 【】 and untitled articles
    nested = clauses.segment("第一条 付款\n一、首付30%。\n二、尾款70%。\n第二条 甲方应于十日内验收。\n")
    assert [(c.number, c.title, c.text) for c in nested] == [
        (1, "付款", "一、首付30%。\n二、尾款70%。"),
        (2, "", "甲方应于十日内验收。"),
    ]
    ordinals = clauses.segment("一、【保密条款】双方保守商业秘密。\n二、管辖\n由上海仲裁委员会仲裁。\n")
    assert [(c.number, c.title, c.kind) for c in ordinals] == [
        (1, "保密条款", "confidentiality"),
        (2, "管辖", "jurisdiction"),
    ]
    en = clauses.segment(fixture("template_en.txt"))
    assert [(c.number, c.title, c.kind) for c in en[1:]] == [
        (1, "Scope", "other"),
        (2, "Payment Terms", "payment"),
        (3, "Limitation of Liability", "liability_cap"),
        (4, "Intellectual Property", "ip"),
        (5, "Confidentiality", "confidentiality"),
        (6, "Termination", "termination"),
        (7, "Governing Law", "jurisdiction"),
    ]
    articles = clauses.segment("Article 1 Payment. Net 30.\n1.1 Invoices monthly.\nSection 2: Term\nOne year.\n")
    assert [(c.number, c.title, c.text) for c in articles] == [
        (1, "Payment", "Net 30.\n1.1 Invoices monthly."),
        (2, "Term", "One year."),
    ]
    assert clauses.chinese_number("二十三") == 23
    assert clauses.chinese_number("一百零五") == 105


def test_a_modified_chinese_contract_against_the_template() -> None:
    result = clauses.compare(fixture("template_zh.txt"), fixture("modified_zh.txt")).as_dict()
    found = by_title(result)
    assert result["risk"] == 3
    assert result["counts"] == {"unchanged": 4, "changed": 5, "missing": 2, "added": 1}
    payment = found["付款方式"]
    assert (payment["status"], payment["type"], payment["risk"]) == ("changed", "payment", 3)
    deleted = "".join(p["text"] for p in payment["diff"] if p["op"] == "delete")
    inserted = "".join(p["text"] for p in payment["diff"] if p["op"] == "insert")
    assert "30%作为预付款" in deleted
    assert "九十日内" in inserted
    # words, not characters: the changed rate reads as one replaced word
    penalty = found["违约责任"]
    assert {"op": "delete", "text": "0.05%"} in penalty["diff"]
    assert {"op": "insert", "text": "0.5%"} in penalty["diff"]
    assert (found["责任限制"]["status"], found["责任限制"]["risk"]) == ("missing", 3)
    assert (found["知识产权"]["status"], found["知识产权"]["type"]) == ("missing", "ip")
    # renamed and renumbered (第八条 合同解除 → 第五条 解约): found by its text
    moved = found["解约"]
    assert (moved["matched_by"], moved["moved"], moved["type"]) == ("text", True, "termination")
    assert moved["template"]["label"] == "第八条"
    assert moved["contract"]["label"] == "第五条"
    # renumbered under the same title, and the court moved to the buyer's seat
    venue = found["争议解决"]
    assert (venue["status"], venue["matched_by"], venue["risk"]) == ("changed", "title", 2)
    assert {"op": "delete", "text": "乙方"} in venue["diff"]
    assert {"op": "insert", "text": "甲方"} in venue["diff"]
    assert (found["保密"]["status"], found["保密"]["risk"]) == ("unchanged", 0)
    assert (found["培训服务"]["status"], found["培训服务"]["risk"]) == ("added", 1)
    # the missing clauses sit where the template had them, after 违约责任
    order = [(c["contract"] or c["template"])["title"] for c in result["clauses"]]
    assert order.index("违约责任") < order.index("责任限制") < order.index("知识产权") < order.index("解约")


def test_clauses_titled_with_a_colon_pair_by_number_and_title() -> None:
    """第一条 标的：… — a title before a full-width colon — is how many Chinese contracts write a
    clause. Each clause pairs with its namesake under the same number (changed, not moved), and only
    a clause on another subject under the same number is missing / added."""
    template = "采购合同（标准模板）\n\n第一条 标的：设备名称、型号、数量及总价以附件一为准。\n" \
        "第二条 付款：合同签订后买方支付 30% 预付款，验收合格后 30 日内支付剩余 70%。\n" \
        "第三条 保密：双方对本合同内容负有保密义务。\n"  # fmt: skip
    contract = "采购合同\n\n第一条 标的：H7 超声系统一台，总价人民币 1,200,000 元。\n" \
        "第二条 付款：合同签订后买方支付 10% 预付款，验收合格后 180 天内支付剩余 90%。\n" \
        "第三条 知识产权：卖方提供的软件源代码归买方所有。\n"  # fmt: skip
    assert [(c.number, c.title) for c in clauses.segment(contract)] == [
        (None, ""), (1, "标的"), (2, "付款"), (3, "知识产权")
    ]  # fmt: skip
    result = clauses.compare(template, contract).as_dict()
    found = by_title(result)
    for title in ("标的", "付款"):
        assert (found[title]["status"], found[title]["matched_by"], found[title]["moved"]) == (
            "changed", "number_title", False
        )  # fmt: skip
    assert found["付款"]["risk"] == 3
    assert (found["保密"]["status"], found["知识产权"]["status"]) == ("missing", "added")


def test_a_modified_english_contract_against_the_template() -> None:
    found = by_title(clauses.compare(fixture("template_en.txt"), fixture("modified_en.txt")).as_dict())
    payment = found["Payment Terms"]
    assert (payment["status"], payment["risk"]) == ("changed", 3)
    assert {"op": "delete", "text": "thirty"} in payment["diff"]
    assert {"op": "insert", "text": "ninety"} in payment["diff"]
    assert (found["Limitation of Liability"]["status"], found["Limitation of Liability"]["risk"]) == ("missing", 3)
    ip = found["Intellectual Property"]
    assert (ip["status"], ip["matched_by"], ip["moved"], ip["risk"]) == ("changed", "title", True, 3)
    assert found["Governing Law"]["type"] == "jurisdiction"
    assert found["Governing Law"]["risk"] == 2
    assert found["Service Levels"]["status"] == "added"
    assert found["Termination"]["status"] == "unchanged"


def _docx(text: str) -> bytes:
    document = Document()
    for line in text.splitlines():
        if line.strip():
            document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _pdf(text: str) -> bytes:
    """A one-page PDF with one Helvetica line per line of ``text``."""
    lines = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in text.splitlines()]
    shown = " ".join(f"({line}) Tj T*" for line in lines if line.strip())
    stream = f"BT /F1 9 Tf 40 780 Td 12 TL {shown} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def test_templates_through_the_api_and_contracts_in_every_format(
    client: TestClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    admin, rep = Api(client, tenant["admin"]), Api(client, tenant["rep"])
    base = "/api/v1/assistant/contract-templates"
    made = client.post(
        base,
        data={"name": "采购合同标准版"},
        files={"file": ("template.docx", _docx(fixture("template_zh.txt")), "application/octet-stream")},
        headers=admin.headers(),
    )
    assert made.status_code == 201, made.text
    template = made.json()
    assert [c["title"] for c in template["clauses"]][1:3] == ["合同标的", "付款方式"]
    refused = client.post(
        base, data={"name": "x"}, files={"file": ("t.txt", b"1. Scope\nAll.\n", "text/plain")}, headers=rep.headers()
    )
    assert_problem(refused, 403)
    duplicate = client.post(
        base,
        data={"name": "采购合同标准版"},
        files={"file": ("t.txt", b"1. Scope\nAll.\n", "text/plain")},
        headers=admin.headers(),
    )
    assert_problem(duplicate, 409, field="name")
    wrong = client.post(
        base, data={"name": "y"}, files={"file": ("t.html", b"<p>x</p>", "text/html")}, headers=admin.headers()
    )
    assert_problem(wrong, 422, field="file")
    english = client.post(
        base,
        data={"name": "MSA"},
        files={"file": ("msa.txt", fixture("template_en.txt").encode(), "text/plain")},
        headers=admin.headers(),
    ).json()

    compare = f"{base}/{template['id']}/compare"
    as_txt = client.post(
        compare,
        files={"file": ("合同.txt", fixture("modified_zh.txt").encode("gb18030"), "text/plain")},
        headers=rep.headers(),
    )
    assert as_txt.status_code == 200, as_txt.text
    assert by_title(as_txt.json())["责任限制"]["status"] == "missing"
    as_docx = client.post(
        compare,
        files={"file": ("合同.docx", _docx(fixture("modified_zh.txt")), "application/octet-stream")},
        headers=rep.headers(),
    )
    assert as_docx.json()["counts"] == as_txt.json()["counts"]
    as_pdf = client.post(
        f"{base}/{english['id']}/compare",
        files={"file": ("contract.pdf", _pdf(fixture("modified_en.txt")), "application/pdf")},
        headers=rep.headers(),
    )
    assert as_pdf.status_code == 200, as_pdf.text
    assert by_title(as_pdf.json())["Limitation of Liability"]["status"] == "missing"
    assert by_title(as_pdf.json())["Payment Terms"]["risk"] == 3

    # another organization's template is not found, and its people may not read ours
    foreign = Api(client, other_tenant["admin"])
    assert_problem(client.get(f"{base}/{template['id']}", headers=foreign.headers()), 404)
    assert foreign.request("GET", "/assistant/contract-templates").json()["items"] == []
    assert client.delete(f"{base}/{template['id']}", headers=admin.headers()).status_code == 204
    assert_problem(client.get(f"{base}/{template['id']}", headers=admin.headers()), 404)


def test_the_comparison_page_in_chinese_and_english(client: TestClient, db: Database, tenant: Tenant) -> None:
    admin = browser(client, db, tenant["admin"])
    page = admin.get("/assistant/contracts")
    assert page.status_code == 200
    assert "合同比对" in page.text
    uploaded = admin.post(
        "/assistant/contracts/templates",
        data={"csrf": csrf_of(page.text), "name": "标准采购合同"},
        files={"file": ("template.txt", fixture("template_zh.txt").encode(), "text/plain")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text
    page = admin.get("/assistant/contracts")
    template_id = page.text.split('<option value="')[1].split('"')[0]
    shown = admin.post(
        "/assistant/contracts/compare",
        data={"csrf": csrf_of(page.text), "template_id": template_id},
        files={"file": ("合同.txt", fixture("modified_zh.txt").encode(), "text/plain")},
    )
    assert shown.status_code == 200, shown.text
    assert 'data-risk="3"' in shown.text
    assert "高风险" in shown.text
    assert "缺失" in shown.text
    assert "<del>0.05%</del><ins>0.5%</ins>" in shown.text

    rep = browser(client, db, tenant["rep"], locale="en")
    page = rep.get("/assistant/contracts")
    assert "Contract comparison" in page.text
    assert "Upload a template" not in page.text
    shown = rep.post(
        "/assistant/contracts/compare",
        data={"csrf": csrf_of(page.text), "template_id": template_id},
        files={"file": ("c.txt", fixture("modified_zh.txt").encode(), "text/plain")},
    )
    assert "High risk" in shown.text
    assert "Missing" in shown.text
    assert "Liability cap" in shown.text


def test_a_template_without_numbered_clauses_is_refused_naming_file(client: TestClient, tenant: Tenant) -> None:
    """Compared clause by clause, a template with no numbered clause would match nothing: every contract
    came back as one changed preamble, silently. Now the upload is refused and says why."""
    admin = Api(client, tenant["admin"])
    base = "/api/v1/assistant/contract-templates"
    prose = "本合同由甲乙双方协商一致订立。\n乙方按期交货，甲方按期付款。\n争议提交甲方所在地法院。\n".encode()
    refused = client.post(
        base, data={"name": "无编号"}, files={"file": ("prose.txt", prose, "text/plain")}, headers=admin.headers()
    )
    problem = assert_problem(refused, 422, field="file", code="no_clauses")
    assert "prose.txt" in problem["errors"][0]["message"]
    assert admin.request("GET", "/assistant/contract-templates").json()["items"] == []
    numbered = "第一条 标的\n乙方交货。\n第二条 付款\n甲方付款。\n".encode()
    made = client.post(
        base, data={"name": "有编号"}, files={"file": ("ok.txt", numbered, "text/plain")}, headers=admin.headers()
    )
    assert made.status_code == 201, made.text


def test_upload_refusals_on_the_comparison_page_stay_on_the_form_in_the_readers_language(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    admin = browser(client, db, tenant["admin"])
    page = admin.get("/assistant/contracts")
    token = csrf_of(page.text)
    exe = admin.post(
        "/assistant/contracts/templates",
        data={"csrf": token, "name": "标准采购合同"},
        files={"file": ("bad.exe", b"MZ\x90\x00", "application/octet-stream")},
    )
    assert exe.status_code == 422
    assert "出错了" not in exe.text
    assert 'id="template-error"' in exe.text
    assert "无法添加 bad.exe：不支持这种文件类型。可以上传的类型：.docx, .pdf, .txt。" in exe.text
    assert 'value="标准采购合同"' in exe.text  # the name typed is kept
    prose = admin.post(
        "/assistant/contracts/templates",
        data={"csrf": token, "name": "标准采购合同"},
        files={"file": ("prose.txt", "甲乙双方协商一致。\n".encode(), "text/plain")},
    )
    assert prose.status_code == 422
    assert "prose.txt 中没有编号的条款" in prose.text
    made = admin.post(
        "/assistant/contracts/templates",
        data={"csrf": token, "name": "标准采购合同"},
        files={"file": ("template.txt", fixture("template_zh.txt").encode(), "text/plain")},
        follow_redirects=False,
    )
    assert made.status_code == 303
    page = admin.get("/assistant/contracts")
    template_id = page.text.split('<option value="')[1].split('"')[0]
    bad_pdf = admin.post(
        "/assistant/contracts/compare",
        data={"csrf": token, "template_id": template_id},
        files={"file": ("合同.pdf", b"%PDF-1.4 truncated", "application/pdf")},
    )
    assert bad_pdf.status_code == 422
    assert "出错了" not in bad_pdf.text
    assert 'id="compare-error"' in bad_pdf.text
    assert "合同.pdf：不是可以读取的 PDF 文件（" in bad_pdf.text
    assert "not a readable PDF" not in bad_pdf.text
    assert f'<option value="{template_id}" selected' in bad_pdf.text
    admin.get("/language/en")
    english = admin.post(
        "/assistant/contracts/compare",
        data={"csrf": token, "template_id": template_id},
        files={"file": ("deal.exe", b"MZ", "application/octet-stream")},
    )
    assert (
        "deal.exe cannot be added: this file type is not accepted. Accepted types: .docx, .pdf, .txt." in english.text
    )
