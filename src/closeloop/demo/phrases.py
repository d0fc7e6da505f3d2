"""What the demo's people say and do: titles by decision role, lost and disqualification reasons,
activity subjects and outcomes, ticket subjects. Chinese first, English for English-named customers."""

from __future__ import annotations

from closeloop.crm.enums import ActivityKind, DecisionRole, Direction, LeadSource

#: (hospital?, chinese?) → decision role → titles
TITLES: dict[tuple[bool, bool], dict[DecisionRole, tuple[str, ...]]] = {
    (True, True): {
        DecisionRole.DECISION_MAKER: ("院长", "副院长", "分管副院长"),
        DecisionRole.INFLUENCER: ("设备科主任", "医务处处长", "信息科主任"),
        DecisionRole.USER: ("放射科主任", "检验科主任", "手术室护士长", "超声科主治医师"),
        DecisionRole.GATEKEEPER: ("采购办主任", "设备科采购专员", "院办秘书"),
        DecisionRole.CHAMPION: ("放射科副主任", "检验科副主任", "设备科工程师"),
    },
    (False, True): {
        DecisionRole.DECISION_MAKER: ("总经理", "董事长", "副总经理"),
        DecisionRole.INFLUENCER: ("技术总监", "财务总监", "运营总监"),
        DecisionRole.USER: ("质量经理", "生产经理", "IT 经理", "实验室主管"),
        DecisionRole.GATEKEEPER: ("采购经理", "采购专员", "总经理助理"),
        DecisionRole.CHAMPION: ("项目经理", "技术经理", "产品经理"),
    },
    (True, False): {
        DecisionRole.DECISION_MAKER: ("Hospital Director", "Medical Director"),
        DecisionRole.INFLUENCER: ("Head of Biomedical Engineering", "Chief Information Officer"),
        DecisionRole.USER: ("Head of Radiology", "Laboratory Director", "Head Nurse, Operating Theatre"),
        DecisionRole.GATEKEEPER: ("Procurement Officer", "Executive Assistant"),
        DecisionRole.CHAMPION: ("Chief Radiologist", "Clinical Engineer"),
    },
    (False, False): {
        DecisionRole.DECISION_MAKER: ("CEO", "General Manager", "Managing Director"),
        DecisionRole.INFLUENCER: ("CTO", "CFO", "Head of Operations"),
        DecisionRole.USER: ("Quality Manager", "Lab Manager", "IT Manager"),
        DecisionRole.GATEKEEPER: ("Procurement Manager", "Purchasing Specialist"),
        DecisionRole.CHAMPION: ("Project Manager", "Technical Lead"),
    },
}

DEPARTMENTS: dict[tuple[bool, bool], dict[DecisionRole, str]] = {
    (True, True): {
        DecisionRole.DECISION_MAKER: "院办",
        DecisionRole.INFLUENCER: "设备科",
        DecisionRole.USER: "临床科室",
        DecisionRole.GATEKEEPER: "采购办",
        DecisionRole.CHAMPION: "医技科室",
    },
    (False, True): {
        DecisionRole.DECISION_MAKER: "总经办",
        DecisionRole.INFLUENCER: "技术部",
        DecisionRole.USER: "运营部",
        DecisionRole.GATEKEEPER: "采购部",
        DecisionRole.CHAMPION: "项目部",
    },
    (True, False): {
        DecisionRole.DECISION_MAKER: "Administration",
        DecisionRole.INFLUENCER: "Biomedical Engineering",
        DecisionRole.USER: "Clinical",
        DecisionRole.GATEKEEPER: "Procurement",
        DecisionRole.CHAMPION: "Radiology",
    },
    (False, False): {
        DecisionRole.DECISION_MAKER: "Management",
        DecisionRole.INFLUENCER: "Technology",
        DecisionRole.USER: "Operations",
        DecisionRole.GATEKEEPER: "Procurement",
        DecisionRole.CHAMPION: "Projects",
    },
}

#: Decision roles of the contacts after the first (who is always a decision maker).
OTHER_ROLES: tuple[tuple[DecisionRole, float], ...] = (
    (DecisionRole.INFLUENCER, 0.30),
    (DecisionRole.USER, 0.30),
    (DecisionRole.GATEKEEPER, 0.22),
    (DecisionRole.CHAMPION, 0.18),
)

LEAD_SOURCES: tuple[tuple[LeadSource, float], ...] = (
    (LeadSource.WEBSITE, 0.20),
    (LeadSource.TRADE_SHOW, 0.13),
    (LeadSource.COLD_CALL, 0.13),
    (LeadSource.EVENT, 0.10),
    (LeadSource.INBOUND_CALL, 0.10),
    (LeadSource.TENDER, 0.09),
    (LeadSource.ADVERTISING, 0.08),
    (LeadSource.PARTNER, 0.08),
    (LeadSource.SOCIAL, 0.07),
    (LeadSource.IMPORT, 0.02),
)

DISQUALIFY_REASONS = (
    "无预算，近两年无采购计划",
    "重复线索，已由其他同事跟进",
    "联系方式无效，多次联系不上",
    "非目标客户（个人诊所，规模过小）",
    "已采购竞品，合同期内",
    "需求不明确，仅索取资料",
)

LOST_REASONS = (
    "价格高于竞品报价",
    "预算冻结，项目暂停",
    "选择了竞品（进口品牌）",
    "招标未入围",
    "客户决策层变动，项目搁置",
    "产品参数不满足招标要求",
    "付款条件未谈拢",
    "交付周期过长",
    "项目延期至明年",
    "客户改为利旧，不再采购",
)

LEAD_NOTES = (
    "展会现场扫码留资，关注{line}。",
    "官网表单：希望了解{line}方案与报价。",
    "老客户介绍，对{line}有明确预算。",
    "招标公告线索，预计下季度挂网。",
    "客户来电咨询{line}，希望安排演示。",
)

#: (kind, direction) → subject templates in Chinese and English
SUBJECTS: dict[tuple[ActivityKind, Direction], tuple[tuple[str, ...], tuple[str, ...]]] = {
    (ActivityKind.CALL, Direction.OUTBOUND): (
        ("电话跟进：{line}需求", "电话确认{product}参数", "电话沟通预算与时间表", "回访：{product}使用情况"),
        ("Call: {line} requirements", "Call to confirm {product} specs", "Call about budget and timeline"),
    ),
    (ActivityKind.CALL, Direction.INBOUND): (
        ("客户来电咨询{product}报价", "客户来电：交付进度", "客户来电：售后问题"),
        ("Inbound call: {product} pricing", "Inbound call: delivery status"),
    ),
    (ActivityKind.EMAIL, Direction.OUTBOUND): (
        (
            "发送{product}产品资料",
            "发送报价单（{product}）",
            "发送合同草案",
            "会议纪要与下一步安排",
            "跟进：是否收到报价？",
        ),
        (
            "Sent {product} brochure",
            "Quote for {product}",
            "Draft contract",
            "Meeting notes and next steps",
            "Following up",
        ),
    ),
    (ActivityKind.EMAIL, Direction.INBOUND): (
        ("客户邮件：技术参数疑问", "客户邮件：预算审批进展", "客户邮件：要求二次报价"),
        ("Customer email: technical questions", "Customer email: budget approval", "Customer email: revised quote"),
    ),
    (ActivityKind.CHAT, Direction.OUTBOUND): (
        ("微信沟通：演示时间", "微信沟通：报价细节", "微信沟通：交付安排"),
        ("WeChat: demo time", "WeChat: pricing details", "WeChat: delivery plan"),
    ),
    (ActivityKind.CHAT, Direction.INBOUND): (
        ("客户微信：发票信息", "客户微信：询问到货时间", "客户微信：需要技术支持"),
        ("WeChat from customer: invoice details", "WeChat from customer: delivery date"),
    ),
    (ActivityKind.VISIT, Direction.OUTBOUND): (
        ("拜访{contact}，演示{product}", "现场勘查与需求调研", "拜访设备科，沟通招标参数"),
        ("Visit {contact}: {product} demo", "Site survey", "Visit procurement about tender specs"),
    ),
    (ActivityKind.MEETING, Direction.OUTBOUND): (
        ("方案评审会", "商务谈判会议", "招标答疑会", "季度业务回顾"),
        ("Solution review", "Negotiation meeting", "Tender Q&A", "Quarterly business review"),
    ),
}

OUTCOMES: dict[ActivityKind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    ActivityKind.CALL: (
        ("已接通，客户有意向", "未接通", "约定下周拜访", "客户要求发送资料"),
        ("Reached, interested", "No answer", "Visit booked for next week", "Asked for documentation"),
    ),
    ActivityKind.VISIT: (
        ("完成产品演示", "拿到科室需求清单", "客户要求试用"),
        ("Demo done", "Got the requirements list", "Customer asked for a trial"),
    ),
    ActivityKind.MEETING: (
        ("达成初步共识", "客户要求二次报价", "进入合同流程"),
        ("Agreement in principle", "Revised quote requested", "Moving to contract"),
    ),
}

TICKET_SUBJECTS: dict[str, tuple[str, ...]] = {
    "IMG": ("{product}图像伪影", "{product}开机报错", "探头更换申请", "设备安装调试预约"),
    "IVD": ("{product}报错 E-203", "试剂批次质控失控", "仪器年度校准", "LIS 对接数据异常"),
    "SUR": ("{product}能量输出不稳定", "吻合器批次投诉", "腔镜摄像头画面闪烁"),
    "CON": ("导管包装破损投诉", "到货数量与订单不符", "索取产品注册证资料"),
    "SW": ("PACS 调阅缓慢", "系统升级申请", "账号权限调整", "远程运维平台离线告警"),
    "RES": ("{product}到货验收问题", "代理产品退换货申请", "{product}使用培训需求"),
    "SVC": ("{product}：设备无法开机", "{product}：预约上门时间", "{product}：更换配件报价"),
}

TICKET_DETAILS = (
    "客户反馈问题已持续两天，影响日常使用，请尽快安排工程师。",
    "已远程指导重启，问题仍在，需要上门处理。",
    "客户要求提供书面处理报告。",
    "问题偶发，已收集日志，待研发分析。",
)
